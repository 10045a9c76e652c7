// What the browser tests share: the machine's Chromium with a fake microphone, kept on loopback,
// a record of everything the page did (console, requests, policy violations), the artifacts
// directory, and reading the service's /metrics.
//
// Run by scripts/check-browser.sh, which starts the service and sets the variables below.

import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const require = createRequire(new URL('../../scripts/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run scripts/check-browser.sh`);
  return value;
}

export const BASE_URL = required('BASE_URL');
export const API_KEY = required('API_KEY');
export const SPEECH_WAV = required('SPEECH_WAV');
export const ARTIFACTS = required('ARTIFACTS');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const CONSOLE_LOG = path.join(ARTIFACTS, 'console.log');

function chromiumArgs() {
  return [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-domain-reliability',
    '--disable-client-side-phishing-detection',
    '--disable-default-apps',
    '--no-pings',
    // Loopback only, even if a page tried: no name but 127.0.0.1 resolves, and anything else
    // would go to a proxy on a closed loopback port (loopback itself is never proxied).
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    '--proxy-server=http://127.0.0.1:9',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    // The microphone plays the speech once, then silence.
    `--use-file-for-fake-audio-capture=${SPEECH_WAV}%noloop`,
  ];
}

/** One browser for the whole run; `seen` collects what the page did, for assertions and logs. */
export async function launch() {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'backend-ai-browser-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    // Playwright's own headless switch is off so that exactly --headless=new is passed.
    headless: false,
    args: chromiumArgs(),
    viewport: { width: 1280, height: 900 },
  });
  await context.grantPermissions(['microphone'], { origin: BASE_URL });
  const seen = { console: [], violations: [], outside: [], pageErrors: [] };
  const log = (line) => {
    seen.console.push(line);
    appendFileSync(CONSOLE_LOG, `${line}\n`);
  };
  writeFileSync(CONSOLE_LOG, '');
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || '(inline)'}`);
    });
    // Keeps the last Blob the page made a URL for (the recording), so the test can save the
    // browser's own bytes without the page fetching its blob: URL, which its policy forbids.
    const createObjectURL = URL.createObjectURL.bind(URL);
    URL.createObjectURL = (object) => {
      window.__lastObjectUrlBlob = object;
      return createObjectURL(object);
    };
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.on('console', (message) => {
    log(`[${message.type()}] ${message.text()}`);
    if (message.text().startsWith('CSP violation')) seen.violations.push(message.text());
  });
  page.on('pageerror', (error) => {
    log(`[pageerror] ${error.stack ?? error.message}`);
    seen.pageErrors.push(error.message);
  });
  page.on('request', (request) => {
    const url = request.url();
    log(`[request] ${request.method()} ${url}`);
    if (!url.startsWith(`${BASE_URL}/`) && !url.startsWith('blob:') && !url.startsWith('data:')) {
      seen.outside.push(url);
    }
  });
  const close = async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { page, seen, close };
}

/** The Blob the page last made an object URL for, as bytes. */
export async function lastBlob(page) {
  const { base64, type } = await page.evaluate(async () => {
    const blob = window.__lastObjectUrlBlob;
    const bytes = new Uint8Array(await blob.arrayBuffer());
    // In slices: String.fromCharCode(...bytes) overflows the stack for large blobs.
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { base64: btoa(binary), type: blob.type };
  });
  return { bytes: Buffer.from(base64, 'base64'), type };
}

export function artifact(name, bytes) {
  const file = path.join(ARTIFACTS, name);
  writeFileSync(file, bytes);
  return file;
}

/** The service's `/metrics`, as `{series: value}` for the lines of `name`. */
export async function metric(name) {
  const text = await (await fetch(`${BASE_URL}/metrics`)).text();
  const series = {};
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`)) {
      const at = line.lastIndexOf(' ');
      series[line.slice(0, at)] = Number(line.slice(at + 1));
    }
  }
  return series;
}

/** Sum of the series whose labels include every `key="value"` in `labels`. */
export function total(series, labels) {
  return Object.entries(series)
    .filter(([key]) => Object.entries(labels).every(([label, value]) => key.includes(`${label}="${value}"`)))
    .reduce((sum, [, value]) => sum + value, 0);
}

/** What a recording's first bytes say it is. */
export function container(bytes) {
  if (bytes.subarray(0, 4).equals(Buffer.from([0x1a, 0x45, 0xdf, 0xa3]))) return 'webm';
  if (bytes.subarray(0, 4).toString('latin1') === 'OggS') return 'ogg';
  if (bytes.subarray(4, 8).toString('latin1') === 'ftyp') return 'mp4';
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF') return 'wav';
  return null;
}
