import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { CesoError, connectionFailure, isCesoError } from '../../core/errors.js';
import { logger } from '../../core/log.js';
import { parseFault } from './faults.js';
import { TrustingAgent, type TlsTrust } from './tls.js';
import { decodeBody, encodeCall, type DecodedObject, type MoRef, type XmlObject } from './xml.js';

export interface TransportOptions extends TlsTrust {
  host: string;
  port: number;
  /** Per-call timeout: a call that gets no answer in this time fails with TIMEOUT. */
  timeoutMs: number;
  connectTimeoutMs: number;
  apiVersion?: string;
}

const SESSION_COOKIE = /vmware_soap_session="?([^";]+)"?/;

/**
 * Moves SOAP envelopes over HTTPS: builds the request, keeps the session cookie, and turns
 * HTTP and socket failures into typed errors. It knows nothing about VMs.
 */
export class SoapTransport {
  private readonly http: AxiosInstance;
  private readonly endpoint: string;
  private readonly agent: TrustingAgent;
  cookie: string | undefined;
  apiVersion: string;
  requests = 0;

  constructor(private readonly options: TransportOptions) {
    this.agent = new TrustingAgent(options, options.connectTimeoutMs);
    const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.endpoint = `https://${hostPart}:${options.port}/sdk`;
    this.apiVersion = options.apiVersion ?? '7.0';
    this.http = axios.create({
      httpsAgent: this.agent,
      proxy: false,
      timeout: options.timeoutMs,
      responseType: 'text',
      transformResponse: (data: unknown) => data,
      validateStatus: () => true,
      maxRedirects: 0,
      decompress: true,
    });
  }

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** Sends one call; resolves the decoded `<Method>Response`, rejects with SoapFault or CesoError. */
  async call(method: string, self: MoRef, args: XmlObject = {}): Promise<DecodedObject> {
    return (await this.callWithText(method, self, args)).value;
  }

  /** As `call`, also giving the response's XML text (for data sent back verbatim, see RawXml). */
  async callWithText(method: string, self: MoRef, args: XmlObject = {}): Promise<{ value: DecodedObject; text: string }> {
    const body = encodeCall(method, self, args);
    const headers: Record<string, string> = {
      'Content-Type': 'text/xml; charset="utf-8"',
      SOAPAction: `"urn:vim25/${this.apiVersion}"`,
    };
    if (this.cookie !== undefined) headers.Cookie = `vmware_soap_session="${this.cookie}"`;

    const started = performance.now();
    this.requests += 1;
    let response;
    try {
      response = await this.http.post<string>(this.endpoint, body, { headers });
    } catch (error) {
      throw this.networkError(error, method);
    }
    const elapsed = Math.round(performance.now() - started);
    logger().debug({ method, status: response.status, ms: elapsed, bytes: response.data.length }, 'soap call');

    const setCookie = response.headers['set-cookie'];
    for (const line of setCookie ?? []) {
      const match = SESSION_COOKIE.exec(line);
      if (match) this.cookie = match[1];
    }

    if (response.status === 200 || response.status === 500) {
      let decoded;
      try {
        decoded = decodeBody(response.data);
      } catch (error) {
        throw new CesoError('HOST_FAULT', `${method}: the host answered HTTP ${response.status} with no SOAP body`, {
          hint: 'Check that the address is an ESXi or vCenter API endpoint',
          cause: error,
        });
      }
      if (decoded.name === 'Fault') throw parseFault(decoded.value, method);
      return { value: decoded.value, text: response.data };
    }
    if (response.status === 503 || response.status === 502 || response.status === 504) {
      throw new CesoError('HOST_UNREACHABLE', `${this.address}: the API service is unavailable (HTTP ${response.status})`, {
        hint: 'hostd may be restarting or stalled: wait, or restart it on the host (/etc/init.d/hostd restart); ceso can use SSH meanwhile',
        details: { reason: 'http-503', status: response.status },
      });
    }
    throw new CesoError('HOST_FAULT', `${method}: unexpected HTTP ${response.status} from ${this.endpoint}`, {
      hint: 'Check that the address is an ESXi or vCenter API endpoint',
      details: { status: response.status },
    });
  }

  private networkError(error: unknown, method: string): CesoError {
    const cause = isAxiosError(error) ? (error.cause ?? error) : error;
    if (isCesoError(cause)) return cause;
    const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? (isAxiosError(error) ? error.code : undefined);
    if (isAxiosError(error) && (error.code === 'ECONNABORTED' || error.code === 'ETIMEDOUT') && error.message.includes('timeout')) {
      return new CesoError('TIMEOUT', `${method}: no answer from ${this.address} within ${this.options.timeoutMs / 1000} s`, {
        hint: 'The host may be overloaded or hostd stalled; raise esxi.timeoutSeconds for slow hosts',
        details: { reason: 'call-timeout' },
      });
    }
    const reason = connectionFailure(code) ?? (cause instanceof Error ? cause.message : String(cause));
    return new CesoError('HOST_UNREACHABLE', `${this.address}: ${reason}`, {
      hint: 'Check the address and port in esxi.host, and that the host is up and reachable from here',
      details: { reason: code ?? 'network' },
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
