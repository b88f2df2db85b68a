// A gateway in front of a recording downstream, for one test: started, handed to the test, stopped.
import { startGateway, type RunningGateway } from './gateway.js';
import { startSink, type Sink, type SinkBehaviour } from './sink.js';

export async function withRelay<T>(
  setup: { sink?: SinkBehaviour; policy?: string[] },
  test: (relay: { gw: RunningGateway; sink: Sink }) => Promise<T>,
): Promise<T> {
  const sink = await startSink(setup.sink);
  try {
    const gw = await startGateway(sink.port, setup.policy);
    try {
      return await test({ gw, sink });
    } finally {
      await gw.close();
    }
  } finally {
    await sink.close();
  }
}
