// The pages as a person uses them, in real Chromium against the real binary on the simulator:
// record from the (fake) microphone, send the recording for transcription and pronunciation
// assessment, analyse a text, pick a file instead, and read /docs. Each step asserts what is on
// the screen; the service's /metrics show what it did with the audio.
//
// The tests run in order and share one page, as one person's visit would.
//   bash scripts/check-browser.sh    (builds, starts the service, sets the variables, runs this)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { API_KEY, BASE_URL, SPEECH_WAV, artifact, container, launch, lastBlob, metric, total } from './support.mjs';

const STEP = { timeout: 60_000 };
const LEVELS = ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'];
const SPOKEN = 'I go to the store yesterday and buy some apples.';

let browser;
let page;
/** audio_inputs_total before the first upload. */
let audioBefore;

before(async () => {
  browser = await launch();
  page = browser.page;
  audioBefore = await metric('audio_inputs_total');
});

after(async () => {
  await browser?.close();
});

const byTestId = (id) => page.getByTestId(id);

/**
 * The result area `id` once its call is answered. A click hides the last error and clears the
 * area at once, so whichever shows first (the answer's meta line, or the error) is this call's.
 */
async function resultOf(id) {
  await page.locator(`[data-testid=${id}] .meta, [data-testid=error]:visible`).first().waitFor();
  if (await byTestId('error').isVisible()) assert.fail(`the page shows an error: ${await byTestId('error').innerText()}`);
  return byTestId(id);
}

async function screenshot(name, viewport) {
  await page.setViewportSize(viewport);
  artifact(name, await page.screenshot({ fullPage: true }));
}

test('the playground offers every control, each with a label', STEP, async () => {
  await page.goto(`${BASE_URL}/playground`);
  for (const id of ['api-key', 'record', 'stop', 'send-transcribe', 'reference-text', 'send-pronunciation',
    'analyze-text', 'send-analyze']) {
    await byTestId(id).waitFor({ state: 'visible' });
  }
  for (const [label, id] of [['X-API-Key', 'api-key'], ['Text the learner read', 'reference-text'],
    ["Learner's text", 'analyze-text'], ['Or choose a recording', 'audio-file']]) {
    assert.equal(await page.getByLabel(label, { exact: true }).getAttribute('data-testid'), id);
  }
  assert.equal(await byTestId('stop').isDisabled(), true, 'nothing to stop yet');
});

test("a call without the API key shows the service's own error message", STEP, async () => {
  await byTestId('send-analyze').click();
  const error = byTestId('error');
  await error.waitFor({ state: 'visible' });
  const text = await error.innerText();
  assert.match(text, /missing or invalid X-API-Key/);
  assert.match(text, /HTTP 401/);
  assert.match(text, /request id: [0-9a-f-]{36}/);
});

test('the API key is kept for the tab only and never put in the URL', STEP, async () => {
  await byTestId('api-key').fill(API_KEY);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('backend-ai.playground.api-key')), API_KEY);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!page.url().includes(API_KEY));
});

test("recording from the microphone shows the recording's type, size and length", STEP, async () => {
  await byTestId('record').click();
  await byTestId('stop').waitFor({ state: 'visible' });
  // The fake microphone speaks for 3.5 s: stop once the page's own clock says 4 s have passed.
  await page.waitForFunction(() => {
    const match = /Recording… (\d+\.\d) s/.exec(document.getElementById('recording-status').textContent);
    return match && Number(match[1]) >= 4.0;
  }, null, { timeout: 30_000 });
  await byTestId('stop').click();
  await byTestId('audio-details').waitFor({ state: 'visible' });
  const type = await page.locator('#audio-type').innerText();
  assert.match(type, /^audio\//, 'the type the browser chose');
  assert.match(await page.locator('#audio-size').innerText(), /^\d+(\.\d+)? (B|KB|MB)$/);
  assert.match(await page.locator('#audio-length').innerText(), /^[4-9]\.\d s$/);

  const recording = await lastBlob(page);
  assert.equal(recording.type, type);
  const kind = container(recording.bytes);
  assert.ok(kind, `the recording starts like a known container: ${recording.bytes.subarray(0, 8).toString('hex')}`);
  artifact(`recording.${kind}`, recording.bytes);
});

test("the recording is transcribed: the transcript, the call's cache state, request id and latency", STEP, async () => {
  await byTestId('send-transcribe').click();
  const transcript = await resultOf('transcript');
  assert.notEqual((await transcript.locator('.transcript-text').innerText()).trim(), '');
  assert.equal(await transcript.locator('.transcript-text.empty').count(), 0, 'speech was recognised');
  assert.equal(await transcript.locator('.meta-cached').innerText(), 'cached: no');
  assert.match(await transcript.locator('.meta-request-id').innerText(), /^request id: [0-9a-f-]{36}$/);
  assert.match(await transcript.locator('.meta-latency').innerText(), /^latency: \d+ ms$/);
});

test('the recording is assessed against the text read: scores as bars, words coloured by accuracy', STEP, async () => {
  await byTestId('reference-text').fill(SPOKEN);
  await byTestId('send-pronunciation').click();
  const result = await resultOf('pronunciation');
  const words = result.locator('.words .word');
  assert.ok((await words.count()) >= 1, 'words are shown');
  for (const word of await words.all()) {
    assert.match(await word.getAttribute('class'), /\baccuracy-(good|fair|poor)\b/);
    assert.match(await word.locator('.word-score').innerText(), /^\d+$/);
  }
  const bars = await result.locator('meter').evaluateAll((meters) => meters.map((meter) => meter.value));
  assert.ok(bars.length >= 4 && bars.every((value) => value >= 0 && value <= 100), `scores: ${bars}`);
  assert.match(await result.locator('.meta-request-id').innerText(), /[0-9a-f-]{36}/);
});

test('the same recording sent again is answered from the cache', STEP, async () => {
  const first = await byTestId('transcript').locator('.meta-request-id').innerText();
  await byTestId('send-transcribe').click();
  const transcript = await resultOf('transcript');
  assert.equal(await transcript.locator('.meta-cached').innerText(), 'cached: yes');
  assert.notEqual(await transcript.locator('.meta-request-id').innerText(), first, 'a new call, a new id');
});

test('a written text is analysed: the CEFR level as a badge, the errors with their corrections', STEP, async () => {
  await byTestId('analyze-text').fill('I go to the store yesterday and buy some apple.');
  await byTestId('send-analyze').click();
  const result = await resultOf('analysis');
  assert.ok(LEVELS.includes(await result.getByTestId('cefr-level').innerText()));
  const errors = result.locator('.grammar-error');
  assert.ok((await errors.count()) >= 1);
  assert.notEqual(await errors.first().locator('ins').innerText(), '');
  assert.match(await result.innerText(), /Strengths \(\d+\)[\s\S]*To improve \(\d+\)[\s\S]*Recommended tasks \(\d+\)/);
  assert.match(await result.locator('.meta').innerText(), /cached: (yes|no)[\s\S]*request id: [0-9a-f-]{36}[\s\S]*latency: \d+ ms/);

  await screenshot('playground-desktop.png', { width: 1280, height: 900 });
  await screenshot('playground-phone.png', { width: 390, height: 844 });
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('a recording picked from a file is sent the same way', STEP, async () => {
  await byTestId('audio-file').setInputFiles(SPEECH_WAV);
  await page.waitForFunction(() => /^\d+\.\d s$/.test(document.getElementById('audio-length').textContent));
  assert.match(await page.locator('#audio-type').innerText(), /^audio\/(x-)?wav$/);
  await byTestId('send-transcribe').click();
  const transcript = await resultOf('transcript');
  assert.equal(await transcript.locator('.meta-cached').innerText(), 'cached: no', 'other bytes, another result');
  assert.notEqual((await transcript.locator('.transcript-text').innerText()).trim(), '');
});

test('the service took every upload as valid audio: re-packaged or transcoded, none refused', STEP, async () => {
  const after = await metric('audio_inputs_total');
  const grew = (labels) => total(after, labels) - total(audioBefore, labels);
  // At least the recording's first two sends (transcription, assessment) and the WAV file.
  assert.ok(grew({ action: 'remux' }) + grew({ action: 'transcode' }) >= 3, JSON.stringify(after));
  assert.ok(grew({ container: 'wav', action: 'transcode' }) >= 1, JSON.stringify(after));
  assert.equal(grew({ action: 'rejected' }), 0, JSON.stringify(after));
});

test('/docs shows every operation of the OpenAPI document', STEP, async () => {
  const openapi = await (await fetch(`${BASE_URL}/openapi.json`)).json();
  const operations = Object.entries(openapi.paths).flatMap(([path, item]) =>
    Object.keys(item).filter((method) => ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']
      .includes(method)).map((method) => `${method} ${path}`));
  assert.ok(operations.length >= 8, operations.join(', '));
  await page.goto(`${BASE_URL}/docs`);
  await page.locator('.opblock').first().waitFor();
  await page.waitForFunction((count) => document.querySelectorAll('.opblock').length >= count, operations.length);
  const shown = await page.locator('.opblock').evaluateAll((blocks) => blocks.map((block) => {
    const method = block.querySelector('.opblock-summary-method').textContent.trim().toLowerCase();
    return `${method} ${block.querySelector('.opblock-summary-path').getAttribute('data-path')}`;
  }));
  assert.deepEqual([...shown].sort(), [...operations].sort());
  await screenshot('docs.png', { width: 1280, height: 900 });
});

test('nothing was loaded from outside the service and the pages broke no rule of their policy', STEP, () => {
  assert.deepEqual(browser.seen.outside, []);
  assert.deepEqual(browser.seen.violations, []);
  assert.deepEqual(browser.seen.pageErrors, []);
});
