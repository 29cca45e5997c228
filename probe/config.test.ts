import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, parseConfig } from './config.ts';

const minimal = `
collector_url: http://127.0.0.1:8080
enrollment_token: abcdefghijklmnopqrstuvwxyz
data_dir: ./data/p1
country: US
asn: 64500
accounts:
  - platform: example
    handle: alice
    region: US
    credentials: { password: pw }
`;

function errorOf(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(text, { file: 'p.yaml', baseDir: '/srv', env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('probe config', () => {
  it('parses the committed example with every documented field', async () => {
    const text = await readFile(join(import.meta.dirname, '..', 'probe.example.yaml'), 'utf8');
    const c = parseConfig(text, {
      baseDir: '/etc/silentdrop',
      env: {
        SILENTDROP_ENROLLMENT_TOKEN: 'tok',
        TESTBED_PASSWORD_US_ALICE: 'a',
        TESTBED_PASSWORD_US_BOB: 'b',
      },
    });
    expect(c.dataDir).toBe('/etc/silentdrop/data/probe-us-1');
    expect(c.enrollmentToken).toBe('tok');
    expect(c.accounts.map((a) => a.handle)).toEqual(['us-alice', 'us-bob']);
    expect(c.accounts[0]!.credentials.password).toBe('a');
    expect(c.accounts[1]!.rateLimits).toEqual({ perMinute: 2, perHour: 120, perDay: 1000 });
    expect(c.budgetPerDay).toBe(3000);
    expect(c.quarantine.bannedMs).toBe(48 * 3600_000);
    expect(c.accounts[0]!.quietHours).toEqual({ startMin: 1410, endMin: 420, timeZone: 'America/New_York' });
    expect(c.accounts[1]!.quietHours).toEqual({ startMin: 60, endMin: 510, timeZone: 'America/Los_Angeles' });
  });

  it('reads quiet hours, lets an account turn them off, and names a bad time zone or time', () => {
    const text = `${minimal}    quiet_hours: null
  - platform: example
    handle: bob
    region: US
quiet_hours: { start: "22:00", end: "06:00", time_zone: Asia/Shanghai }
`;
    const c = parseConfig(text, { baseDir: '/srv' });
    expect(c.accounts[0]!.quietHours).toBeUndefined();
    expect(c.accounts[1]!.quietHours).toEqual({ startMin: 1320, endMin: 360, timeZone: 'Asia/Shanghai' });
    expect(
      errorOf(`${minimal}quiet_hours: { start: "22:00", end: "06:00", time_zone: Mars/Olympus }\n`),
    ).toMatch(/quiet_hours.time_zone \(line 12\): unknown time zone "Mars\/Olympus"/);
    expect(errorOf(`${minimal}quiet_hours: { start: "24:00", end: "06:00", time_zone: UTC }\n`)).toMatch(
      /quiet_hours.start/,
    );
  });

  it('fills defaults for optional fields', () => {
    const c = parseConfig(minimal, { baseDir: '/srv' });
    expect(c.checkinCron).toBe(DEFAULTS.checkinCron);
    expect(c.accounts[0]!.pacing).toEqual(DEFAULTS.pacing);
    expect(c.collectorUrl).toBe('http://127.0.0.1:8080');
    expect(c.dataDir).toBe('/srv/data/p1');
  });

  it('names the field and line of a bad value', () => {
    const msg = errorOf(minimal.replace('region: US', 'region: usa'));
    expect(msg).toMatch(/accounts\[0\]\.region \(line 10\)/);
  });

  it('names a missing required field', () => {
    expect(errorOf(minimal.replace('asn: 64500\n', ''))).toMatch(/missing required field "asn"/);
  });

  it('names an unknown field (a typo) and its line', () => {
    expect(errorOf(`${minimal}chekin_cron: "* * * * *"\n`)).toMatch(/chekin_cron \(line 12\): unknown field/);
  });

  it('refuses an unknown adapter, naming the known ones', () => {
    expect(errorOf(minimal.replace('platform: example', 'platform: wechat'))).toMatch(
      /accounts\[0\]\.platform.*unknown adapter "wechat" \(known: .*example, .*testbed/,
    );
  });

  it('refuses a bad cron expression, a bad URL and inverted pacing', () => {
    expect(errorOf(`${minimal}checkin_cron: "every minute"\n`)).toMatch(/checkin_cron.*not a valid cron/);
    expect(errorOf(minimal.replace('http://127.0.0.1:8080', 'ftp://x'))).toMatch(/collector_url.*http/);
    expect(errorOf(`${minimal}pacing: { min_ms: 5000, max_ms: 10 }\n`)).toMatch(/pacing\.min_ms/);
  });

  it('refuses a plain http:// collector unless it is loopback or the config allows insecure transport', () => {
    const remote = minimal.replace('http://127.0.0.1:8080', 'http://collector.example.org');
    expect(errorOf(remote)).toMatch(
      /collector_url \(line 2\).*plain http:\/\/ to collector\.example\.org.*allow_insecure_transport/,
    );
    expect(parseConfig(`${remote}allow_insecure_transport: true\n`).collectorUrl).toBe(
      'http://collector.example.org',
    );
    for (const host of ['localhost:8080', '127.0.0.2', '[::1]:8080']) {
      expect(parseConfig(minimal.replace('127.0.0.1:8080', host)).collectorUrl).toBe(`http://${host}`);
    }
    expect(
      parseConfig(minimal.replace('http://127.0.0.1:8080', 'https://collector.example.org')).collectorUrl,
    ).toBe('https://collector.example.org');
  });

  it('takes several collector_urls, in order, checking each, and not both forms at once', () => {
    const urls = minimal.replace(
      'collector_url: http://127.0.0.1:8080',
      'collector_urls: [https://a.example.org/, https://b.example.org/sd/]',
    );
    const c = parseConfig(urls);
    expect(c.collectorUrls).toEqual(['https://a.example.org', 'https://b.example.org/sd']);
    expect(c.collectorUrl).toBe('https://a.example.org');
    expect(parseConfig(minimal).collectorUrls).toEqual(['http://127.0.0.1:8080']);
    expect(errorOf(urls.replace('https://b.example.org/sd/', 'http://b.example.org'))).toMatch(
      /collector_urls\[1\].*plain http/,
    );
    expect(errorOf(`${urls}collector_url: https://c.example.org\n`)).toMatch(/not both/);
    expect(errorOf(minimal.replace('collector_url: http://127.0.0.1:8080\n', ''))).toMatch(/collector_url/);
  });

  it('takes a proxy URL or direct, and refuses a bad scheme or URL without quoting its credentials', () => {
    const routes = (proxy: string, env: NodeJS.ProcessEnv = {}) =>
      parseConfig(`${minimal}proxy: "${proxy}"\n`, { env }).proxyRoutes;
    expect(routes('socks5h://u:p%40ss@127.0.0.1:1080')).toEqual([
      { collectorUrl: 'http://127.0.0.1:8080', proxy: 'socks5h://u:p%40ss@127.0.0.1:1080', source: 'config' },
    ]);
    expect(routes('http://proxy.example:3128')[0]!.proxy).toBe('http://proxy.example:3128');
    expect(routes('direct', { HTTP_PROXY: 'http://env.example:3128' })).toEqual([
      { collectorUrl: 'http://127.0.0.1:8080', source: 'config_direct' },
    ]);
    expect(routes('env:PROXY', { PROXY: 'https://u:pw@proxy.example' })[0]!.proxy).toBe(
      'https://u:pw@proxy.example',
    );
    expect(parseConfig(minimal, { env: {} }).proxyRoutes).toEqual([
      { collectorUrl: 'http://127.0.0.1:8080', source: 'none' },
    ]);
    const bad = (proxy: string) => errorOf(`${minimal}proxy: "${proxy}"\n`);
    expect(bad('ftp://user:hunter22@proxy.example')).toMatch(
      /^p\.yaml: proxy \(line 12\): unsupported proxy scheme "ftp" \(http, https, socks5 or socks5h\), or "direct"$/,
    );
    expect(bad('socks4://proxy.example:1080')).toContain('unsupported proxy scheme "socks4"');
    expect(bad('proxy.example:3128')).toContain('unsupported proxy scheme "proxy.example"');
    expect(bad('not a url at all')).toContain('proxy (line 12): not a URL');
    expect(bad('http://user:hunter22@proxy.example:3128/path')).toContain('with no path or query');
    expect(bad('http://:hunter22@proxy.example:3128')).toContain('a password but no user name');
    for (const p of ['ftp://user:hunter22@proxy.example', 'http://user:hunter22@proxy.example:3128/path'])
      expect(bad(p)).not.toContain('hunter22');
    expect(errorOf(`${minimal}proxy: 3128\n`)).toMatch(/proxy \(line 12\): .*string/);
  });

  it('takes the proxy from HTTPS_PROXY, HTTP_PROXY or ALL_PROXY by the collector’s scheme, and names a bad one', () => {
    const twoUrls = minimal.replace(
      'collector_url: http://127.0.0.1:8080',
      'collector_urls: [https://a.example.org, http://127.0.0.1:8080, https://b.internal]',
    );
    const c = parseConfig(twoUrls, {
      env: {
        HTTPS_PROXY: 'http://upper.example:3128',
        https_proxy: 'http://lower.example:3128',
        ALL_PROXY: 'socks5://127.0.0.1:1080',
        NO_PROXY: '.internal',
      },
    });
    expect(c.proxyRoutes).toEqual([
      { collectorUrl: 'https://a.example.org', proxy: 'http://lower.example:3128', source: 'https_proxy' },
      { collectorUrl: 'http://127.0.0.1:8080', proxy: 'socks5://127.0.0.1:1080', source: 'ALL_PROXY' },
      { collectorUrl: 'https://b.internal', source: 'no_proxy' },
    ]);
    expect(errorOf(minimal, { HTTP_PROXY: 'gopher://u:hunter22@x' })).toBe(
      'p.yaml: environment variable HTTP_PROXY: unsupported proxy scheme "gopher" (http, https, socks5 or socks5h) ' +
        '(fix or unset it, or set proxy: in the config, e.g. proxy: direct)',
    );
    // The config's proxy wins, so a bad variable does not matter then.
    expect(
      parseConfig(`${minimal}proxy: direct\n`, { env: { HTTP_PROXY: 'gopher://x' } }).proxyRoutes[0]!.source,
    ).toBe('config_direct');
  });

  it('reads env: secrets and names a missing variable', () => {
    const text = minimal.replace('password: pw', 'password: env:PW_ALICE');
    expect(parseConfig(text, { env: { PW_ALICE: 's3cret' } }).accounts[0]!.credentials.password).toBe(
      's3cret',
    );
    expect(errorOf(text)).toMatch(/accounts\[0\]\.credentials\.password.*PW_ALICE is not set/);
  });

  it('reports a YAML syntax error with its line', () => {
    expect(errorOf('collector_url: [unclosed\ndata_dir: x\n')).toMatch(/^p\.yaml:\d+:\d+: /);
  });

  it('refuses the same account twice', () => {
    const twice = `${minimal}  - platform: example\n    handle: alice\n    region: CN\n`;
    expect(errorOf(twice)).toMatch(/accounts\[1\]\.handle.*listed twice/);
  });
});
