/**
 * 64-bit fields (times in ms, sequence numbers, incarnations) are plain JavaScript numbers in
 * Tandem: every value we carry stays below 2^53. protobufjs hands out Long objects whenever the
 * `long` package is installed, so it is switched off here, before the generated code loads and
 * computes its defaults (this module must be imported first).
 */
import protobuf from 'protobufjs/minimal.js';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();
