/**
 * @module @tandem/heartbeat
 * The heartbeat engine and its pure pieces, for tests and tools. Importing this module starts nothing.
 */
export { HeartbeatEngine, type DropReason, type EngineLog, type EngineOptions, type EnginePeer } from './engine/engine.js';
export {
  PeerTable,
  type Change,
  type PathState,
  type PathView,
  type PeerState,
  type PeerView,
  type Received,
  type TableDrop,
} from './engine/peer-table.js';
export {
  heartbeatKey,
  openHeartbeat,
  sealHeartbeat,
  type Heartbeat,
  type HeartbeatInit,
  type HeartbeatKey,
  type Opened,
  type WireDrop,
} from './engine/wire.js';
export { nextIncarnation } from './incarnation.js';
