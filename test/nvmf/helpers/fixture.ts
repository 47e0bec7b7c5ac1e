/**
 * Test fixture: an NvmfTarget on 127.0.0.1 (ephemeral port) serving a file-backed volume in a
 * temporary directory.
 */
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvmfTarget, type SubsystemConfig, type PortInfo, type TargetOptions } from '../../../src/nvmf/index.ts';
import { FileBlockDevice } from '../../../src/volume/index.ts';

/** The host NQN tests use unless they test the allow-list. */
export const HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000cafe';
/** The subsystem NQN of the fixture's volume. */
export const SUBNQN = 'nqn.2024-01.io.cairn:test:vol0';

/** A running fixture. */
export interface Fixture {
  target: NvmfTarget;
  port: PortInfo;
  device: FileBlockDevice;
  dir: string;
  logs: string[];
  close(): Promise<void>;
}

/** Starts a target with one subsystem (SUBNQN, nsid 1, `size` bytes) allowing HOSTNQN. */
export async function startFixture(o: { size?: number; sub?: Partial<SubsystemConfig>; target?: TargetOptions } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-nvmf-'));
  const device = await FileBlockDevice.open(join(dir, 'vol0.img'), { size: o.size ?? 16 << 20 });
  const logs: string[] = [];
  // Every JSON line the target logs, whole (tests match messages and fields alike).
  const target = new NvmfTarget({ log: pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) }), ...o.target });
  target.addSubsystem({ nqn: SUBNQN, allowHosts: [HOSTNQN], namespaces: [{ nsid: 1, device, usage: () => device.allocatedBytes() }], ...o.sub });
  const port = await target.listen({ portId: 1, port: 0 });
  return {
    target,
    port,
    device,
    dir,
    logs,
    close: async () => {
      await target.close();
      await device.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
