import { z } from 'zod';

const hostName = z.string().min(1, 'expected a host name or address');
const port = z.number().int().min(1).max(65535);

/** `AA:BB:…` as ESXi's console shows it: 20 bytes (SHA-1) or 32 bytes (SHA-256) of hex pairs. */
export const thumbprintPattern = /^([0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/;

export const esxiSchema = z
  .object({
    host: hostName.describe('host or host:port of the ESXi or vCenter API (HTTPS, default port 443)'),
    user: z.string().min(1).default('root'),
    password: z.string().optional(),
    insecure: z.boolean().default(false),
    thumbprint: z
      .string()
      .regex(thumbprintPattern, 'expected a SHA-1 or SHA-256 thumbprint as hex pairs joined by ":"')
      .optional(),
    timeoutSeconds: z.number().positive().max(3600).default(30),
    connectTimeoutSeconds: z.number().positive().max(300).default(5),
  })
  .strict();

export const sshSchema = z
  .object({
    host: hostName.optional(),
    port: port.default(22),
    user: z.string().min(1).default('root'),
    keyPath: z.string().min(1).optional(),
    password: z.string().optional(),
    knownHosts: z.string().min(1).optional(),
    hostKey: z
      .string()
      .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected an OpenSSH fingerprint like SHA256:abc… (ssh-keygen -lf)')
      .optional(),
    volumesRoot: z.string().startsWith('/', 'expected an absolute path').default('/vmfs/volumes'),
    connectTimeoutSeconds: z.number().positive().max(300).default(10),
  })
  .strict();

export const defaultsSchema = z
  .object({
    template: z.string().min(1).optional(),
    datastore: z.string().min(1).optional(),
    network: z.string().min(1).optional(),
    cpu: z.number().int().min(1).max(768).default(2),
    memory: z.number().positive().max(24576).default(4),
    disk: z.number().positive().max(62000).default(40),
  })
  .strict();

export const securitySchema = z
  .object({
    mode: z.enum(['standard', 'restricted']).default('standard'),
    allowedTemplates: z.array(z.string().min(1)).optional(),
    namePrefix: z.string().min(1).optional(),
    allowUserData: z.boolean().default(false),
    requireTTL: z.boolean().default(false),
    maxTTL: z.string().min(1).optional(),
    limits: z
      .object({
        cpu: z.number().int().positive().optional(),
        memoryGB: z.number().positive().optional(),
        diskGB: z.number().positive().optional(),
        vms: z.number().int().nonnegative().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const hostEntrySchema = z
  .object({
    esxi: esxiSchema,
    ssh: sshSchema.optional(),
    defaults: defaultsSchema.partial().optional(),
  })
  .strict();

export const configFileSchema = z
  .object({
    esxi: esxiSchema.optional(),
    ssh: sshSchema.optional(),
    hosts: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a host name of letters, digits, ".", "_" or "-"'), hostEntrySchema).optional(),
    defaultHost: z.string().min(1).optional(),
    defaults: defaultsSchema.optional(),
    security: securitySchema.optional(),
  })
  .strict();

export type EsxiConfig = z.infer<typeof esxiSchema>;
export type SshConfig = z.infer<typeof sshSchema>;
export type DefaultsConfig = z.infer<typeof defaultsSchema>;
export type SecurityConfig = z.infer<typeof securitySchema>;
export type ConfigFile = z.infer<typeof configFileSchema>;
