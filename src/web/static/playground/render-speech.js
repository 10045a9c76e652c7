// What a transcription and a pronunciation assessment look like on the page.

import { details, el, metaLine } from './dom.js';

/** Azure's mispronunciation threshold is 60; 80 and up is what learners read as "good". */
export function accuracyClass(score) {
  if (score >= 80) return 'accuracy-good';
  if (score >= 60) return 'accuracy-fair';
  return 'accuracy-poor';
}

export function transcription(result) {
  const data = result.data;
  const text = data.text
    ? el('p', { class: 'transcript-text' }, data.text)
    : el('p', { class: 'transcript-text empty' }, `No speech recognised (${data.status}).`);
  return [
    text,
    details([
      ['Lexical', data.lexical],
      ['Confidence', `${Math.round(data.confidence * 100)} %`],
      ['Status', data.status],
      ['Language', data.language],
      ['Speech', `${data.offset_ms} ms to ${data.offset_ms + data.duration_ms} ms`],
    ]),
    metaLine(result),
  ];
}

function scoreBar(name, value) {
  const id = `score-${name.toLowerCase()}`;
  return el('div', { class: 'score' },
    el('label', { for: id, class: 'score-name' }, name),
    el('meter', { id, min: 0, max: 100, low: 60, high: 80, optimum: 100, value }),
    el('span', { class: 'score-value' }, Math.round(value)));
}

function word(score) {
  const error = score.error_type && score.error_type !== 'None' ? score.error_type : null;
  const classes = ['word', accuracyClass(score.accuracy_score), error ? `error-${error.toLowerCase()}` : ''];
  const label = `${score.word}: accuracy ${Math.round(score.accuracy_score)}${error ? `, ${error}` : ''}`;
  return el('li', { class: classes.join(' ').trim(), title: label, 'aria-label': label },
    el('span', { class: 'word-text' }, score.word),
    el('span', { class: 'word-score' }, Math.round(score.accuracy_score)),
    error && el('span', { class: 'word-error' }, error));
}

/**
 * The sounds to practise: every named phoneme of the words said, weakest first, at most `count`
 * of them under 80 (what learners read as "good"), each with its word and, when Azure heard
 * another sound, that one.
 */
export function weakestSounds(words, count = 5) {
  return words
    .filter((w) => w.error_type !== 'Omission')
    .flatMap((w) => (w.phonemes || [])
      .filter((p) => p.phoneme && typeof p.accuracy_score === 'number')
      .map((p) => ({ phoneme: p.phoneme, score: p.accuracy_score, said: p.said || null, word: w.word })))
    .filter((sound) => sound.score < 80)
    .sort((a, b) => a.score - b.score)
    .slice(0, count);
}

function sound(item) {
  const said = item.said ? `, heard /${item.said}/` : '';
  const label = `/${item.phoneme}/ in “${item.word}”: accuracy ${Math.round(item.score)}${said}`;
  return el('li', { class: `sound ${accuracyClass(item.score)}`, title: label, 'aria-label': label },
    el('span', { class: 'sound-phoneme' }, `/${item.phoneme}/`),
    el('span', { class: 'sound-word' }, ` in “${item.word}” `),
    el('span', { class: 'word-score' }, Math.round(item.score)),
    item.said && el('span', { class: 'sound-said' }, ` heard /${item.said}/`));
}

export function pronunciation(result) {
  const data = result.data;
  const scores = [
    ['Pronunciation', data.pronunciation_score],
    ['Accuracy', data.accuracy_score],
    ['Fluency', data.fluency_score],
    ['Completeness', data.completeness_score],
    ['Prosody', data.prosody_score],
  ].filter(([, value]) => typeof value === 'number');
  const weakest = weakestSounds(data.words || []);
  const segments = data.segments || [];
  const extra = [];
  if (data.mode === 'unscripted') extra.push('free speech');
  if (segments.length > 1) extra.push(`${segments.length} pieces`);
  return [
    el('div', { class: 'scores' }, scores.map(([name, value]) => scoreBar(name, value))),
    el('p', { class: 'heard' }, 'Heard: ', el('q', {}, data.recognized_text || '(nothing)')),
    el('ol', { class: 'words', 'aria-label': 'Words, coloured by accuracy' }, data.words.map(word)),
    weakest.length > 0 && el('div', { class: 'weakest', 'data-testid': 'weakest-sounds' },
      el('h3', {}, 'Sounds to practise'),
      el('ol', { class: 'sounds', 'aria-label': 'Weakest sounds, weakest first' }, weakest.map(sound))),
    el('p', { class: 'legend' },
      el('span', { class: 'word accuracy-good' }, '80 and up'),
      el('span', { class: 'word accuracy-fair' }, '60 to 79'),
      el('span', { class: 'word accuracy-poor' }, 'below 60')),
    metaLine(result, [...extra, ...(data.status && data.status !== 'Success' ? [`status: ${data.status}`] : [])]),
  ];
}
