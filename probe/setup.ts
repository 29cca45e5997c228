/**
 * Setting a probe up on a server: the config `silentdrop probe init` writes, and the
 * systemd unit `silentdrop probe service install` writes. Both are plain functions of
 * their inputs so that what they produce is tested as it is written.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { stringify } from 'yaml';

export interface InitAnswers {
  collectorUrls: string[];
  enrollmentToken: string;
  dataDir: string;
  country: string;
  asn: number;
  label?: string;
  allowInsecureTransport?: boolean;
  /** platform/handle/region each. */
  accounts: { platform: string; handle: string; region: string }[];
}

/** "platform/handle/region" → its parts (the handle may not contain a slash). */
export function parseAccountSpec(spec: string): { platform: string; handle: string; region: string } {
  const parts = spec.split('/');
  if (parts.length !== 3 || parts.some((p) => p.trim() === '')) {
    throw new Error(`account "${spec}": expected platform/handle/region, e.g. xmpp/alice@example.org/CN`);
  }
  const [platform, handle, region] = parts.map((p) => p.trim()) as [string, string, string];
  return { platform, handle, region };
}

/** The YAML `probe init` writes: risks accepted, the answers, and comments for the rest. */
export function initConfigText(a: InitAnswers, now = new Date()): string {
  const body: Record<string, unknown> = {};
  if (a.collectorUrls.length === 1) body.collector_url = a.collectorUrls[0];
  else body.collector_urls = a.collectorUrls;
  if (a.allowInsecureTransport) body.allow_insecure_transport = true;
  body.enrollment_token = a.enrollmentToken;
  body.data_dir = a.dataDir;
  body.country = a.country;
  body.asn = a.asn;
  if (a.label) body.label = a.label;
  body.risks_accepted = true;
  body.accounts = a.accounts.map((x) => ({ platform: x.platform, handle: x.handle, region: x.region }));
  return [
    `# Written by \`silentdrop probe init\` on ${now.toISOString()}.`,
    '# risks_accepted: the operator read docs/operators.md and accepted the risks.',
    '# Account credentials, settings, limits and quiet hours: see probe.example.yaml.',
    '# The enrollment token is needed on the first run only; it may be removed afterwards.',
    stringify(body, { lineWidth: 0 }).trimEnd(),
    '',
  ].join('\n');
}

/** The "Risks" sections of docs/operators.md, for `probe init` to show before it asks. */
export function risksText(operatorsMd: string): string {
  const sections = operatorsMd.split(/^(?=## )/m);
  const wanted = sections.filter((s) => /^## (What the probe does|Risks)/.test(s));
  return (wanted.length > 0 ? wanted : sections).join('').trim();
}

export function readOperatorsDoc(root: string): string {
  return readFileSync(`${root}docs/operators.md`, 'utf8');
}

export interface UnitOptions {
  /** Absolute paths. */
  node: string;
  bin: string;
  config: string;
  /** The probe's data_dir from the config (absolute). */
  dataDir: string;
  /** A system user of its own; undefined: DynamicUser=yes. */
  user?: string;
  /** Name of the StateDirectory under /var/lib (default silentdrop-probe). */
  stateDirectory?: string;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]*$/;

/**
 * A hardened systemd unit that runs `silentdrop probe --config FILE`: restarted always,
 * as its own user (or a dynamic one), its state under /var/lib, the rest of the file
 * system read-only. Paths with spaces or % are refused rather than escaped.
 */
export function systemdUnit(o: UnitOptions): string {
  for (const [name, p] of Object.entries({
    node: o.node,
    bin: o.bin,
    config: o.config,
    data_dir: o.dataDir,
  })) {
    if (!isAbsolute(p) || !SAFE_PATH.test(p)) {
      throw new Error(`${name} ${JSON.stringify(p)}: give an absolute path of letters, digits and ._/@+-`);
    }
  }
  if (o.user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(o.user)) {
    throw new Error(`user "${o.user}" is not a valid system user name`);
  }
  const state = o.stateDirectory ?? 'silentdrop-probe';
  if (!/^[A-Za-z0-9._-]+$/.test(state)) throw new Error(`state directory "${state}" must be one folder name`);
  const stateDir = `/var/lib/${state}`;
  const underState = o.dataDir === stateDir || o.dataDir.startsWith(`${stateDir}/`);
  const inHome = [o.node, o.bin, o.config, o.dataDir].some((p) => /^\/(home|root)(\/|$)/.test(p));
  return [
    '# Written by `silentdrop probe service install`.',
    '[Unit]',
    'Description=silentdrop probe (censorship measurement)',
    'Documentation=https://github.com/silentdrop/silentdrop/blob/main/docs/probe-vps.md',
    'Wants=network-online.target',
    'After=network-online.target',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${o.node} ${o.bin} probe --config ${o.config}`,
    'Restart=always',
    'RestartSec=10',
    // The probe finishes the send in flight and flushes its outbox on SIGTERM.
    'KillSignal=SIGTERM',
    'TimeoutStopSec=60',
    ...(o.user ? [`User=${o.user}`, `Group=${o.user}`] : ['DynamicUser=yes']),
    `StateDirectory=${state}`,
    'StateDirectoryMode=0700',
    ...(underState ? [] : [`ReadWritePaths=${o.dataDir}`]),
    'Environment=NODE_ENV=production',
    'UMask=0077',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ProtectHome=${inHome ? 'read-only' : 'yes'}`,
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'LockPersonality=yes',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    'CapabilityBoundingSet=',
    'SystemCallArchitectures=native',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
