/**
 * The JSON Schema of cluster.yaml. Every key a user can write is here, with its default;
 * docs/configuration.md describes each one. Adding a resource or monitor type means adding
 * one entry to RESOURCE_SCHEMAS or MONITOR_SCHEMAS (and its driver).
 */
import { DURATION_PATTERN } from '../duration.js';

const name = { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,62}$' } as const;
const duration = { type: 'string', pattern: DURATION_PATTERN } as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

export const START_FINAL_ACTIONS = [
  'continue',
  'hold',
  'stop-group',
  'stop-cluster-service',
  'stop-cluster-service-and-shutdown',
  'stop-cluster-service-and-reboot',
] as const;
export const STOP_FINAL_ACTIONS = [
  'continue',
  'hold',
  'stop-cluster-service-and-shutdown',
  'stop-cluster-service-and-reboot',
  'emergency',
] as const;
export const MONITOR_FINAL_ACTIONS = [
  'none',
  'stop-group',
  'stop-cluster-service',
  'stop-cluster-service-and-shutdown',
  'stop-cluster-service-and-reboot',
  'emergency',
] as const;
export const EMERGENCY_ACTIONS = ['shutdown', 'reboot', 'reset', 'panic', 'poweroff', 'exec', 'stop-services'] as const;
export const PARTITION_METHODS = ['majority', 'witness', 'ping', 'disk'] as const;

/** What every resource type has: its name, dependencies, time bounds and failure handling. */
const resourceCommon = {
  name,
  dependsOn: { type: 'array', items: name, uniqueItems: true, default: [] },
  timeout: { ...duration, default: '60s' },
  stopTimeout: { ...duration, default: '60s' },
  onStartFailure: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      retries: { type: 'integer', minimum: 0, maximum: 99, default: 0 },
      failovers: { type: 'integer', minimum: 0, maximum: 99, default: 1 },
      finalAction: { enum: START_FINAL_ACTIONS, default: 'hold' },
    },
  },
  onStopFailure: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      retries: { type: 'integer', minimum: 0, maximum: 99, default: 0 },
      finalAction: { enum: STOP_FINAL_ACTIONS, default: 'stop-cluster-service-and-shutdown' },
    },
  },
} as const;

function resource(type: string, required: string[], extra: Record<string, unknown>) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'type', ...required],
    properties: { ...resourceCommon, type: { const: type }, ...extra },
  };
}

/** An IPv4 address with its prefix length, like 10.0.0.100/24. */
const ipv4Cidr = {
  type: 'string',
  pattern: '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$',
} as const;
const ifname = { type: 'string', pattern: '^[A-Za-z0-9_.:@-]{1,15}$' } as const;

export const RESOURCE_SCHEMAS = {
  exec: resource('exec', ['start'], {
    start: { type: 'string', minLength: 1 },
    stop: { type: 'string', minLength: 1 },
    mode: { enum: ['sync', 'async'], default: 'sync' },
    cwd: { type: 'string', minLength: 1 },
    env: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
  }),
  fip: resource('fip', ['address', 'interface'], {
    address: ipv4Cidr,
    interface: ifname,
    /** gratuitous ARP announcements after adding the address */
    arpCount: { type: 'integer', minimum: 0, maximum: 10, default: 3 },
    /** refuse to add the address when another host answers for it */
    checkDuplicate: { type: 'boolean', default: true },
    /** how long the duplicate check waits for another host's answer */
    duplicateWait: { ...duration, default: '50ms' },
  }),
} as const;

const monitorCommon = {
  name,
  target: name,
  interval: { ...duration, default: '5s' },
  timeout: { ...duration, default: '30s' },
  retries: { type: 'integer', minimum: 0, maximum: 999, default: 1 },
  startDelay: { ...duration, default: '0s' },
  when: { enum: ['always', 'active'] },
  delayWarning: { type: 'integer', minimum: 1, maximum: 100, default: 80 },
  recovery: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      target: { type: 'string', minLength: 1 },
      reactivations: { type: 'integer', minimum: 0, maximum: 99, default: 3 },
      failovers: { type: 'integer', minimum: 0, maximum: 99, default: 1 },
      finalAction: { enum: MONITOR_FINAL_ACTIONS, default: 'none' },
    },
  },
} as const;

function monitor(type: string, required: string[], extra: Record<string, unknown>) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'type', ...required],
    properties: { ...monitorCommon, type: { const: type }, ...extra },
  };
}

export const MONITOR_SCHEMAS = {
  pid: monitor('pid', ['target'], {}),
  process: monitor('process', ['processName'], {
    processName: { type: 'string', minLength: 1 },
    minCount: { type: 'integer', minimum: 1, default: 1 },
  }),
  custom: monitor('custom', ['command'], { command: { type: 'string', minLength: 1 } }),
  http: monitor('http', ['url'], {
    url: { type: 'string', pattern: '^https?://' },
    expectStatus: { type: 'integer', minimum: 100, maximum: 599, default: 200 },
  }),
  tcp: monitor('tcp', ['port'], { host: { type: 'string', minLength: 1, default: '127.0.0.1' }, port }),
  fip: monitor('fip', ['target'], {}),
  nic: monitor('nic', ['interface'], { interface: ifname }),
  ip: monitor('ip', ['addresses'], { addresses: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } } }),
} as const;

function discriminated(schemas: Record<string, object>) {
  return {
    type: 'object',
    required: ['type'],
    discriminator: { propertyName: 'type' },
    oneOf: Object.values(schemas),
  };
}

export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  required: ['cluster', 'servers'],
  properties: {
    cluster: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name,
        secret: { type: 'string', minLength: 1 },
        heartbeat: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            interval: { ...duration, default: '1s' },
            timeout: { ...duration, default: '5s' },
            port: { ...port, default: 29002 },
          },
        },
        nodeManagerPort: { ...port, default: 29001 },
        networkPartition: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            method: { type: 'array', items: { enum: PARTITION_METHODS }, uniqueItems: true, default: ['majority'] },
            witness: { type: 'string', pattern: '^https?://' },
            pingTargets: { type: 'array', items: { type: 'string', minLength: 1 } },
            disk: { type: 'string', minLength: 1 },
            fenceGrace: duration,
          },
        },
        emergency: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            action: { enum: EMERGENCY_ACTIONS, default: 'shutdown' },
            command: { type: 'string', minLength: 1 },
            deadline: { ...duration, default: '500ms' },
          },
        },
        stallLimit: duration,
        startupWait: { ...duration, default: '5m' },
        /** a server that went down without a clean stop rejoins by itself (true) or waits for `tandem node return` */
        autoReturn: { type: 'boolean', default: false },
        rebootLimit: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            max: { type: 'integer', minimum: 0, maximum: 99, default: 3 },
            resetAfter: { ...duration, default: '60m' },
          },
        },
      },
    },
    servers: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name,
          interconnects: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, default: ['127.0.0.1'] },
          // Z85 (ZeroMQ's base-85): 40 characters for a 32-byte CURVE key
          publicKey: { type: 'string', pattern: '^[0-9a-zA-Z.:+=^!/*?&<>()\\[\\]{}@%$#-]{40}$' },
        },
      },
    },
    mirrors: { type: 'array', maxItems: 0, default: [] },
    groups: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'resources'],
        properties: {
          name,
          servers: { type: 'array', items: name, minItems: 1, uniqueItems: true },
          autoStart: { type: 'boolean', default: true },
          autoFailback: { type: 'boolean', default: false },
          exclusive: { type: 'boolean', default: false },
          resources: { type: 'array', items: discriminated(RESOURCE_SCHEMAS) },
        },
      },
    },
    monitors: { type: 'array', default: [], items: discriminated(MONITOR_SCHEMAS) },
  },
} as const;
