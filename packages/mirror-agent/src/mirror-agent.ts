/**
 * The mirror agent (tandem-md). Mirror disks are not implemented yet (the configuration
 * schema refuses them), so it only answers `status` and keeps its liveness channel to the
 * guard like every core daemon.
 */
import { TandemError, type DaemonImpl } from '@tandem/core';
import type { Request } from '@tandem/protocol';

export class MirrorAgent implements DaemonImpl {
  async handle(request: Request): Promise<{ ack: { message: string } }> {
    if (request.body !== 'status') throw new TandemError('BAD_REQUEST', `tandem-md does not serve ${request.body}`);
    return { ack: { message: 'no mirrors' } };
  }

  async stop(): Promise<void> {
    // nothing held: no mirrors
  }
}
