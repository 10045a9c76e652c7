// Records what a real browser's MediaRecorder writes, for the fixtures in tests/fixtures/audio/.
//
// Starts the machine's own Chromium (never a downloaded one) headless, with a fake microphone
// that plays a WAV file once, serves a one-line page from a loopback HTTP server of its own
// (127.0.0.1 on a random port: a secure context, so getUserMedia works), records the fake
// microphone with MediaRecorder and writes the bytes the browser produced, unchanged.
//
//   node scripts/record-browser-audio.mjs --input ABS.wav --out FILE --mime 'audio/webm;codecs=opus'
//        [--timeslice MS] [--seconds S] [--bits-per-second N] [--chromium /usr/bin/chromium]
//   node scripts/record-browser-audio.mjs --probe      (prints MediaRecorder.isTypeSupported answers)
//
// It prints one JSON line describing the recording (the MIME type the browser chose, the track's
// settings, the size of every dataavailable blob) on stdout. Nothing here talks to any address but
// 127.0.0.1: the page is local and Chromium is started with its background services off, every
// host name but 127.0.0.1 mapped to "not found" and any other connection sent to a closed port.
//
// scripts/record-browser-audio.sh installs playwright-core (scripts/browser/) and runs this.

import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(new URL('./browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

function parseArgs(argv) {
    const opts = {
        input: null,
        out: null,
        mime: 'audio/webm;codecs=opus',
        timeslice: null,
        seconds: null,
        bitsPerSecond: null,
        chromium: '/usr/bin/chromium',
        probe: false,
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
            return argv[++i];
        };
        switch (arg) {
            case '--input': opts.input = path.resolve(value()); break;
            case '--out': opts.out = path.resolve(value()); break;
            case '--mime': opts.mime = value(); break;
            case '--timeslice': opts.timeslice = Number(value()); break;
            case '--seconds': opts.seconds = Number(value()); break;
            case '--bits-per-second': opts.bitsPerSecond = Number(value()); break;
            case '--chromium': opts.chromium = value(); break;
            case '--probe': opts.probe = true; break;
            default: throw new Error(`unknown argument ${arg}`);
        }
    }
    if (!opts.probe && (!opts.input || !opts.out || !opts.seconds)) {
        throw new Error('--input, --out and --seconds are needed (or --probe)');
    }
    return opts;
}

// The page does nothing by itself: the recording is driven from page.evaluate below.
const PAGE = '<!doctype html><meta charset="utf-8"><title>record</title><p>recorder</p>\n';

function startServer() {
    return new Promise((resolve, reject) => {
        const server = createServer((req, res) => {
            // Answer every path with the page; favicon requests and the like get it too.
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
            res.end(PAGE);
        });
        server.on('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
    });
}

function chromiumArgs(input) {
    const args = [
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
        '--metrics-recording-only',
        // Belt and braces for "loopback only": names other than 127.0.0.1 do not resolve, and
        // whatever would still go out is sent to a proxy on a closed loopback port (Chromium
        // never proxies loopback itself, so the page is reached directly).
        '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
        '--proxy-server=http://127.0.0.1:9',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
    ];
    if (input) args.push(`--use-file-for-fake-audio-capture=${input}%noloop`);
    return args;
}

async function withBrowser(opts, fn) {
    const server = await startServer();
    const userDataDir = await mkdtemp(path.join(tmpdir(), 'record-browser-audio-'));
    let context;
    try {
        context = await chromium.launchPersistentContext(userDataDir, {
            executablePath: opts.chromium,
            // Playwright's own headless switch is off so that exactly --headless=new is passed.
            headless: false,
            args: chromiumArgs(opts.input),
        });
        const origin = `http://127.0.0.1:${server.address().port}`;
        await context.grantPermissions(['microphone'], { origin });
        const page = context.pages()[0] ?? (await context.newPage());
        await page.goto(`${origin}/`);
        return await fn(page);
    } finally {
        if (context) await context.close();
        await new Promise((resolve) => server.close(resolve));
        await rm(userDataDir, { recursive: true, force: true });
    }
}

const PROBE_TYPES = [
    'audio/webm',
    'audio/webm;codecs=opus',
    'audio/webm;codecs=pcm',
    'audio/ogg;codecs=opus',
    'audio/mp4',
    'audio/mp4;codecs=opus',
    'audio/mp4;codecs=mp4a.40.2',
    'audio/x-matroska;codecs=opus',
    'audio/wav',
];

async function probe(page) {
    return page.evaluate((types) => ({
        userAgent: navigator.userAgent,
        isTypeSupported: Object.fromEntries(types.map((t) => [t, MediaRecorder.isTypeSupported(t)])),
    }), PROBE_TYPES);
}

async function record(page, opts) {
    return page.evaluate(async ({ mime, timeslice, seconds, bitsPerSecond }) => {
        if (!MediaRecorder.isTypeSupported(mime)) {
            return { error: `MediaRecorder.isTypeSupported(${JSON.stringify(mime)}) is false` };
        }
        // Plain {audio: true}, as most pages ask: the browser's defaults decide the rest.
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        const track = stream.getAudioTracks()[0];
        const options = { mimeType: mime };
        if (bitsPerSecond) options.audioBitsPerSecond = bitsPerSecond;
        const recorder = new MediaRecorder(stream, options);
        const blobs = [];
        recorder.ondataavailable = (event) => { if (event.data.size > 0) blobs.push(event.data); };
        const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
        if (timeslice) recorder.start(timeslice); else recorder.start();
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        recorder.stop();
        await stopped;
        for (const t of stream.getTracks()) t.stop();
        const blob = new Blob(blobs, { type: recorder.mimeType });
        const bytes = new Uint8Array(await blob.arrayBuffer());
        // base64 in slices: String.fromCharCode(...bytes) overflows the stack for large blobs.
        let binary = '';
        for (let i = 0; i < bytes.length; i += 0x8000) {
            binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        }
        return {
            mimeType: recorder.mimeType,
            audioBitsPerSecond: recorder.audioBitsPerSecond,
            trackSettings: track.getSettings(),
            blobSizes: blobs.map((b) => b.size),
            base64: btoa(binary),
        };
    }, { mime: opts.mime, timeslice: opts.timeslice, seconds: opts.seconds, bitsPerSecond: opts.bitsPerSecond });
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.probe) {
        const answer = await withBrowser(opts, probe);
        process.stdout.write(`${JSON.stringify(answer)}\n`);
        return;
    }
    const result = await withBrowser(opts, (page) => record(page, opts));
    if (result.error) throw new Error(result.error);
    const bytes = Buffer.from(result.base64, 'base64');
    await writeFile(opts.out, bytes);
    delete result.base64;
    const summary = {
        out: path.basename(opts.out),
        requestedMime: opts.mime,
        timeslice: opts.timeslice,
        seconds: opts.seconds,
        bytes: bytes.length,
        ...result,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((err) => {
    process.stderr.write(`record-browser-audio: ${err.stack ?? err}\n`);
    process.exit(1);
});
