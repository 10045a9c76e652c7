// Recording from the microphone with MediaRecorder, in whatever format this browser records by
// default: the service recognises a recording by its bytes, so forcing a type would only shut
// out browsers that cannot make it (Safari records MP4, Firefox Ogg, Chrome WebM).

/** Why this page cannot record here, or null when it can. */
export function cannotRecord() {
  if (!window.isSecureContext) {
    return 'Recording needs a secure page (https, or http://localhost). Choose a recording instead.';
  }
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
    return 'This browser cannot record here (no MediaRecorder). Choose a recording instead.';
  }
  return null;
}

/**
 * Start recording. `onProgress(elapsedMs, bytesSoFar)` is called while it runs. Resolves to an
 * object whose `stop()` resolves to `{blob, type, durationMs}`.
 */
export async function startRecording(onProgress) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  let bytes = 0;
  let startedAt = performance.now();
  recorder.addEventListener('start', () => { startedAt = performance.now(); });
  recorder.addEventListener('dataavailable', (event) => {
    if (event.data.size > 0) {
      chunks.push(event.data);
      bytes += event.data.size;
    }
  });
  const ticker = setInterval(() => onProgress(performance.now() - startedAt, bytes), 200);
  // A timeslice hands over the recording in pieces while it runs, so the size can be shown as it
  // grows; the pieces joined are one valid file (WebM's live shape, fragmented MP4).
  recorder.start(1000);
  return {
    stop() {
      return new Promise((resolve, reject) => {
        recorder.addEventListener('stop', () => {
          clearInterval(ticker);
          for (const track of stream.getTracks()) track.stop();
          const durationMs = performance.now() - startedAt;
          const type = recorder.mimeType || chunks[0]?.type || '';
          resolve({ blob: new Blob(chunks, { type }), type, durationMs });
        }, { once: true });
        recorder.addEventListener('error', (event) => reject(event.error ?? new Error('recording failed')), { once: true });
        recorder.stop();
      });
    },
  };
}
