import t from 'tap';
import { SerialQueue, sleep } from '@tandem/core';

t.test('work runs one piece after another, and a failure does not stop the queue', async (t) => {
  const q = new SerialQueue();
  const seen: string[] = [];
  const slow = q.run(async () => {
    seen.push('slow begins');
    await sleep(50);
    seen.push('slow ends');
    return 1;
  });
  const failing = q.run(async () => {
    seen.push('failing');
    throw new Error('boom');
  });
  const last = q.run(async () => {
    seen.push('last');
    return 3;
  });
  t.equal(await slow, 1);
  await t.rejects(failing, { message: 'boom' }, 'the failure is its caller’s');
  t.equal(await last, 3, 'and the next piece still runs');
  t.same(seen, ['slow begins', 'slow ends', 'failing', 'last']);
});
