import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stationConfigOf } from '../../cli/commands/worker';
import { createStationDriver } from '../../activities/robot/station';
import { WIDOWX_ENVS_DEFAULT_ENV_PARAMS } from '../../data-schemas/station';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function configFile(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vla-station-config-'));
  dirs.push(dir);
  const file = join(dir, 'station.json');
  writeFileSync(file, content);
  return file;
}

describe('vla worker station: which station the command line names', () => {
  it('is simulated by default, an HTTP arm with --url, a widowx_envs robot server with --widowx-envs', () => {
    expect(stationConfigOf({ stepDelayMs: 200 })).toMatchObject({ kind: 'sim', stepDelayMs: 200 });
    expect(stationConfigOf({ url: 'http://10.0.0.5:8080/', stepDelayMs: 0 })).toMatchObject({ kind: 'widowx-http', url: 'http://10.0.0.5:8080/' });
    const envs = stationConfigOf({ widowxEnvs: '10.0.0.7', stepDelayMs: 0 });
    expect(envs).toMatchObject({ kind: 'widowx-envs', host: '10.0.0.7', port: 5556, cameraKey: 'image', imageSize: 256, envParams: WIDOWX_ENVS_DEFAULT_ENV_PARAMS });
    expect(stationConfigOf({ widowxEnvs: 'arm2.lab:6000', stepDelayMs: 0 })).toMatchObject({ host: 'arm2.lab', port: 6000 });
    expect(() => stationConfigOf({ widowxEnvs: 'arm 2', stepDelayMs: 0 })).toThrow(/--widowx-envs arm 2: expected <host\[:port\]>: host: a host name or IP address/);
    expect(() => stationConfigOf({ url: 'http://a/', widowxEnvs: 'b', stepDelayMs: 0 })).toThrow('station: give one of --url, --widowx-envs, not several');
  });

  it('reads a whole StationConfig from --station-config and names what is wrong in it', () => {
    const file = configFile(JSON.stringify({ kind: 'widowx-envs', host: '192.168.1.30', cameraKey: 'full_image', imageSize: 224, safety: { maxStepMeters: 0.03 } }));
    expect(stationConfigOf({ stationConfig: file, stepDelayMs: 0 })).toMatchObject({ kind: 'widowx-envs', host: '192.168.1.30', port: 5556, cameraKey: 'full_image', imageSize: 224, safety: { maxStepMeters: 0.03 } });
    const bad = configFile(JSON.stringify({ kind: 'widowx-envs', host: 'arm', cameraKey: 'wrist', port: 70000 }));
    expect(() => stationConfigOf({ stationConfig: bad, stepDelayMs: 0 })).toThrow(new RegExp(`--station-config ${bad}: not a StationConfig: .*port: .*cameraKey: `));
    const broken = configFile('{ "kind": ');
    expect(() => stationConfigOf({ stationConfig: broken, stepDelayMs: 0 })).toThrow(new RegExp(`--station-config ${broken}: cannot read it as JSON`));
  });

  it('a widowx-envs driver is built only with the Python environment it runs its child in', async () => {
    expect(() => createStationDriver({ kind: 'widowx-envs', host: '127.0.0.1' })).toThrow('a widowx-envs station needs the Python environment (createStationDriver option `python`)');
    const driver = createStationDriver({ kind: 'widowx-envs', host: '127.0.0.1' }, { python: () => Promise.reject(new Error('not started')) });
    expect(driver.kind).toBe('widowx-envs');
    await expect(driver.reset({ instruction: 'pick up the eggplant' })).rejects.toMatchObject({
      code: 'server_error',
      message: 'widowx_envs robot server tcp://127.0.0.1:5556: no Python environment for its driver process (python -m vla_py.widowx): not started',
    });
    await driver.close();
  });
});
