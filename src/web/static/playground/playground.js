// The playground: the page's controls wired to the recorder and the API, results shown as they come.

import { post } from './api.js';
import { el, formatBytes, formatSeconds, show } from './dom.js';
import { cannotRecord, startRecording } from './recorder.js';
import { analysis } from './render-analysis.js';
import { pronunciation, transcription } from './render-speech.js';

// sessionStorage: the key lives as long as the tab, is never written to disk for later visits,
// and never travels in a URL where logs and history would keep it.
const KEY_STORAGE = 'backend-ai.playground.api-key';

const byId = (id) => document.getElementById(id);
const ui = {
  apiKey: byId('api-key'),
  record: byId('record'),
  stop: byId('stop'),
  status: byId('recording-status'),
  unavailable: byId('recorder-unavailable'),
  file: byId('audio-file'),
  details: byId('audio-details'),
  type: byId('audio-type'),
  size: byId('audio-size'),
  length: byId('audio-length'),
  playback: byId('playback'),
  language: byId('language'),
  sendTranscribe: byId('send-transcribe'),
  transcript: byId('transcript'),
  referenceText: byId('reference-text'),
  sendPronunciation: byId('send-pronunciation'),
  pronunciation: byId('pronunciation'),
  analyzeText: byId('analyze-text'),
  sendAnalyze: byId('send-analyze'),
  analysis: byId('analysis'),
  error: byId('error'),
};

/** The recording or file to send: `{blob, name, type, durationMs}` (durationMs null if unknown). */
let audio = null;
let recording = null;
let playbackUrl = null;

ui.apiKey.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
ui.apiKey.addEventListener('input', () => {
  if (ui.apiKey.value) sessionStorage.setItem(KEY_STORAGE, ui.apiKey.value);
  else sessionStorage.removeItem(KEY_STORAGE);
});

const unavailable = cannotRecord();
if (unavailable) {
  ui.record.disabled = true;
  ui.unavailable.textContent = unavailable;
  ui.unavailable.hidden = false;
}

ui.record.addEventListener('click', async () => {
  ui.record.disabled = true;
  ui.status.textContent = 'Asking for the microphone…';
  try {
    recording = await startRecording((elapsedMs, bytes) => {
      ui.status.textContent = `Recording… ${formatSeconds(elapsedMs)}, ${formatBytes(bytes)}`;
    });
  } catch (error) {
    ui.status.textContent = `Cannot record: ${error.message}`;
    ui.record.disabled = false;
    return;
  }
  ui.status.textContent = 'Recording…';
  ui.stop.disabled = false;
  ui.stop.focus();
});

ui.stop.addEventListener('click', async () => {
  ui.stop.disabled = true;
  try {
    const made = await recording.stop();
    useAudio({ ...made, name: `recording.${extension(made.type)}` });
    ui.status.textContent = 'Recorded.';
  } catch (error) {
    ui.status.textContent = `Recording failed: ${error.message}`;
  }
  recording = null;
  ui.record.disabled = false;
  ui.record.textContent = 'Record again';
});

ui.file.addEventListener('change', () => {
  const [file] = ui.file.files;
  if (file) useAudio({ blob: file, name: file.name, type: file.type, durationMs: null });
});

function extension(type) {
  const subtype = type.split(';')[0].split('/')[1] ?? '';
  return { webm: 'webm', ogg: 'ogg', mp4: 'm4a', mpeg: 'mp3', wav: 'wav', 'x-wav': 'wav' }[subtype] ?? 'audio';
}

function useAudio(next) {
  audio = next;
  if (playbackUrl) URL.revokeObjectURL(playbackUrl);
  playbackUrl = URL.createObjectURL(next.blob);
  ui.playback.src = playbackUrl;
  ui.playback.hidden = false;
  ui.type.textContent = next.type || 'not given (the service reads the bytes)';
  ui.size.textContent = formatBytes(next.blob.size);
  ui.length.textContent = next.durationMs === null ? 'reading…' : formatSeconds(next.durationMs);
  if (next.durationMs === null) {
    // A picked file's length is what the browser reads from it; some formats only say when played.
    ui.playback.addEventListener('loadedmetadata', () => {
      if (audio !== next) return;
      const seconds = ui.playback.duration;
      ui.length.textContent = Number.isFinite(seconds) ? formatSeconds(seconds * 1000) : 'not stated in the file';
    }, { once: true });
    ui.playback.addEventListener('error', () => {
      if (audio === next) ui.length.textContent = 'unknown (this browser cannot play it; the service may still read it)';
    }, { once: true });
  }
  ui.details.hidden = false;
  ui.sendTranscribe.disabled = false;
  ui.sendPronunciation.disabled = false;
}

function audioForm(fields) {
  const form = new FormData();
  form.append('audio', audio.blob, audio.name);
  form.append('language', ui.language.value);
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

/** One call: the button busy while it runs, then the result in `target` or the error under it. */
async function run(what, button, target, send, render) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  ui.error.hidden = true;
  show(target, el('p', { class: 'hint' }, 'Sending…'));
  const result = await send();
  button.disabled = false;
  button.removeAttribute('aria-busy');
  if (result.ok) {
    show(target, render(result));
    return;
  }
  show(target);
  showError(what, target, result);
}

function showError(what, target, result) {
  ui.error.replaceChildren(
    el('h2', {}, `${what} failed`),
    el('p', { class: 'error-message' }, result.message),
    el('p', { class: 'meta' },
      el('span', {}, result.status ? `HTTP ${result.status}` : 'no answer'),
      result.code && el('span', {}, 'code: ', el('code', {}, result.code)),
      el('span', {}, 'request id: ', el('code', {}, result.requestId || 'none')),
      el('span', {}, `latency: ${Math.round(result.latencyMs)} ms`)));
  // Shown where the person is looking: under the call that failed.
  target.after(ui.error);
  ui.error.hidden = false;
}

ui.sendTranscribe.addEventListener('click', () => run('Transcription', ui.sendTranscribe, ui.transcript,
  () => post('/api/transcribe', audioForm({}), ui.apiKey.value), transcription));

ui.sendPronunciation.addEventListener('click', () => run('Pronunciation assessment', ui.sendPronunciation,
  ui.pronunciation,
  // An empty text is free speech: the field is left out, not sent empty (which is a 422).
  () => post('/api/pronunciation',
    audioForm(ui.referenceText.value.trim() ? { reference_text: ui.referenceText.value } : {}), ui.apiKey.value),
  pronunciation));

ui.sendAnalyze.addEventListener('click', () => run('Analysis', ui.sendAnalyze, ui.analysis,
  () => post('/api/analyze', { text: ui.analyzeText.value }, ui.apiKey.value), analysis));
