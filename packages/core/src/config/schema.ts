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

const execResource = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'start'],
  properties: {
    name,
    type: { const: 'exec' },
    start: { type: 'string', minLength: 1 },
    stop: { type: 'string', minLength: 1 },
    mode: { enum: ['sync', 'async'], default: 'sync' },
    dependsOn: { type: 'array', items: name, uniqueItems: true, default: [] },
    timeout: { ...duration, default: '60s' },
    stopTimeout: { ...duration, default: '60s' },
    cwd: { type: 'string', minLength: 1 },
    env: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
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
  },
} as const;

export const RESOURCE_SCHEMAS = { exec: execResource } as const;

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
          publicKey: { type: 'string', minLength: 40, maxLength: 40 },
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
