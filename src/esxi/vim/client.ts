import { CesoError, isCesoError } from '../../core/errors.js';
import { logger } from '../../core/log.js';
import { SoapFault, faultToError } from '../soap/faults.js';
import { SessionCache, type CachedSession } from '../soap/session-cache.js';
import { SoapTransport, type TransportOptions } from '../soap/transport.js';
import { MoRef, asObject, asString, type Decoded, type DecodedObject, type XmlObject } from '../soap/xml.js';

export interface ClientOptions extends TransportOptions {
  user: string;
  password: string;
  /** Directory of cached sessions; undefined disables reuse across invocations. */
  sessionDirectory?: string;
}

/** The ServiceContent references ceso uses, kept as MoRefs. */
export interface ServiceContent {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  sessionManager: MoRef;
  viewManager?: MoRef;
  fileManager?: MoRef;
  virtualDiskManager?: MoRef;
  searchIndex?: MoRef;
  ovfManager?: MoRef;
}

const SERVICE_INSTANCE = new MoRef('ServiceInstance', 'ServiceInstance');
const SERVICE_CONTENT_KEYS = ['rootFolder', 'propertyCollector', 'sessionManager', 'viewManager', 'fileManager', 'virtualDiskManager', 'searchIndex', 'ovfManager'] as const;
/** The version header for the first call, before the host has said which it speaks. */
const BOOTSTRAP_API_VERSION = '6.5';

/**
 * A logged-in connection to one host: the generic method invoker every operation goes through.
 * It reuses a cached session when it can and logs in again, once, when the host has dropped it.
 */
export class VimClient {
  private content: ServiceContent | undefined;
  private sessionFromCache = false;
  apiType = 'unknown';
  private readonly cache: SessionCache | undefined;
  private readonly cacheKey: string;

  constructor(
    private readonly transport: SoapTransport,
    private readonly options: ClientOptions,
  ) {
    this.cache = options.sessionDirectory === undefined ? undefined : new SessionCache(options.sessionDirectory);
    this.cacheKey = SessionCache.keyFor(options.host, options.port, options.user, options.password);
  }

  static create(options: ClientOptions): VimClient {
    return new VimClient(new SoapTransport({ ...options, apiVersion: BOOTSTRAP_API_VERSION }), options);
  }

  get requestCount(): number {
    return this.transport.requests;
  }

  get isVCenter(): boolean {
    return this.apiType === 'VirtualCenter';
  }

  /** Ensures a session: a cached one costs no request; otherwise RetrieveServiceContent and Login. */
  async connect(): Promise<ServiceContent> {
    if (this.content !== undefined) return this.content;
    const cached = this.cache?.load(this.cacheKey);
    if (cached !== undefined) {
      const restored = restoreServiceContent(cached.serviceContent);
      if (restored !== undefined) {
        this.transport.cookie = cached.cookie;
        this.transport.apiVersion = cached.apiVersion;
        this.apiType = cached.apiType;
        this.content = restored;
        this.sessionFromCache = true;
        return restored;
      }
    }
    return this.login();
  }

  private async login(): Promise<ServiceContent> {
    this.transport.cookie = undefined;
    const response = await this.rawCall('RetrieveServiceContent', SERVICE_INSTANCE, {});
    const returned = asObject(response.returnval);
    const about = asObject(returned.about);
    const content = restoreServiceContent(
      Object.fromEntries(
        SERVICE_CONTENT_KEYS.flatMap((key) => {
          const ref = returned[key];
          return ref instanceof MoRef ? [[key, `${ref.type}:${ref.value}`]] : [];
        }),
      ),
    );
    if (content === undefined) throw new CesoError('HOST_FAULT', 'the host returned an incomplete ServiceContent');
    this.apiType = asString(about.apiType) ?? 'unknown';
    this.transport.apiVersion = asString(about.apiVersion) ?? BOOTSTRAP_API_VERSION;

    await this.rawCall('Login', content.sessionManager, { userName: this.options.user, password: this.options.password });
    this.content = content;
    this.sessionFromCache = false;
    logger().debug({ host: this.transport.address, apiType: this.apiType }, 'logged in');
    if (this.cache !== undefined && this.transport.cookie !== undefined) {
      const session: CachedSession = {
        cookie: this.transport.cookie,
        serviceContent: Object.fromEntries(
          Object.entries(content).map(([key, ref]) => [key, `${(ref as MoRef).type}:${(ref as MoRef).value}`]),
        ),
        apiType: this.apiType,
        apiVersion: this.transport.apiVersion,
        savedAt: new Date().toISOString(),
      };
      this.cache.save(this.cacheKey, session);
    }
    return content;
  }

  /** Calls a vSphere method and returns its `returnval` (undefined for void methods). */
  async invoke(method: string, self: MoRef, args: XmlObject = {}): Promise<Decoded | undefined> {
    return (await this.invokeWithText(method, self, args)).returnval;
  }

  /** As `invoke`, also giving the response's XML text. */
  async invokeWithText(method: string, self: MoRef, args: XmlObject = {}): Promise<{ returnval: Decoded | undefined; text: string }> {
    await this.connect();
    try {
      const { value, text } = await this.rawCallWithText(method, self, args);
      return { returnval: value.returnval, text };
    } catch (error) {
      if (error instanceof CesoError && error.details?.fault === 'NotAuthenticated' && this.sessionFromCache) {
        logger().debug('cached session expired; logging in again');
        this.cache?.forget(this.cacheKey);
        this.content = undefined;
        await this.login();
        const { value, text } = await this.rawCallWithText(method, self, args);
        return { returnval: value.returnval, text };
      }
      throw error;
    }
  }

  /** The host and port the client talks to (device URLs with a `*` host mean this one). */
  get address(): { host: string; port: number } {
    return { host: this.options.host, port: this.options.port };
  }

  /** TLS trust and timeouts of this connection, for other HTTPS requests to the same host (NFC uploads). */
  get tlsOptions(): Pick<ClientOptions, 'insecure' | 'thumbprint' | 'connectTimeoutMs' | 'timeoutMs'> {
    return {
      insecure: this.options.insecure,
      ...(this.options.thumbprint === undefined ? {} : { thumbprint: this.options.thumbprint }),
      connectTimeoutMs: this.options.connectTimeoutMs,
      timeoutMs: this.options.timeoutMs,
    };
  }

  /**
   * Where state tied to this host's session lives across invocations (the directory of the
   * session cache) and the key of this credential's files there; undefined: no reuse.
   */
  get sessionStore(): { directory: string; key: string } | undefined {
    return this.options.sessionDirectory === undefined ? undefined : { directory: this.options.sessionDirectory, key: this.cacheKey };
  }

  /** The session cookie, sent with NFC uploads as govc does (harmless where the ticket in the URL suffices). */
  get sessionCookie(): string | undefined {
    return this.transport.cookie;
  }

  private async rawCall(method: string, self: MoRef, args: XmlObject): Promise<DecodedObject> {
    return (await this.rawCallWithText(method, self, args)).value;
  }

  private async rawCallWithText(method: string, self: MoRef, args: XmlObject): Promise<{ value: DecodedObject; text: string }> {
    try {
      return await this.transport.callWithText(method, self, args);
    } catch (error) {
      if (error instanceof SoapFault) throw faultToError(error);
      if (isCesoError(error)) throw error;
      throw new CesoError('INTERNAL', `${method}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  get serviceContent(): ServiceContent {
    if (this.content === undefined) throw new CesoError('INTERNAL', 'not connected');
    return this.content;
  }

  close(): void {
    this.transport.close();
  }
}

function restoreServiceContent(stored: Record<string, string>): ServiceContent | undefined {
  const refs: Partial<Record<string, MoRef>> = {};
  for (const [key, text] of Object.entries(stored)) {
    const colon = text.indexOf(':');
    if (colon > 0) refs[key] = new MoRef(text.slice(0, colon), text.slice(colon + 1));
  }
  const { rootFolder, propertyCollector, sessionManager } = refs;
  if (rootFolder === undefined || propertyCollector === undefined || sessionManager === undefined) return undefined;
  return refs as unknown as ServiceContent;
}

/** The fault type behind a CesoError raised by a host call, for the few places that branch on it. */
export function faultTypeOf(error: unknown): string | undefined {
  return error instanceof CesoError && typeof error.details?.fault === 'string' ? error.details.fault : undefined;
}
