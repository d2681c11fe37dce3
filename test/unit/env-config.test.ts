import { describe, expect, it } from 'vitest';
import { EnvConfig } from '../../data-schemas/config';

describe('environment variables', () => {
  it('VLA_METRICS_ADDRESS takes an IP and port (what the SDK binds), and names the form when it is not one', () => {
    for (const ok of ['127.0.0.1:9464', '0.0.0.0:9464', '[::1]:9464']) expect(EnvConfig.parse({ VLA_METRICS_ADDRESS: ok }).VLA_METRICS_ADDRESS).toBe(ok);
    for (const bad of ['localhost:9464', '10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', '300.1.1.1:9464']) {
      const parsed = EnvConfig.safeParse({ VLA_METRICS_ADDRESS: bad });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.message).toMatch(/IP:port/);
    }
  });

  it('VLA_MULTI_HOST is 0 or 1', () => {
    expect(EnvConfig.parse({}).VLA_MULTI_HOST).toBe(false);
    expect(EnvConfig.parse({ VLA_MULTI_HOST: '1' }).VLA_MULTI_HOST).toBe(true);
    expect(EnvConfig.safeParse({ VLA_MULTI_HOST: 'yes' }).success).toBe(false);
  });
});
