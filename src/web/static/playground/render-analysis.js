// What a writing analysis looks like on the page: the CEFR level as a badge, each error with its
// correction, then strengths, what to improve and what to practise. Errors, tasks and the
// assessment may carry fields beyond the contract's (`severity`, `minutes`, `sub_scores`): those
// a learner would read are shown when present.

import { el, metaLine } from './dom.js';

const LEVELS = ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'];

function badge(assessment) {
  const level = LEVELS.includes(assessment.level) ? assessment.level : '?';
  const confidence = typeof assessment.confidence === 'number'
    ? el('span', { class: 'cefr-confidence' }, `confidence ${Math.round(assessment.confidence * 100)} %`)
    : null;
  const subScores = assessment.sub_scores && typeof assessment.sub_scores === 'object'
    ? el('ul', { class: 'sub-scores' },
      Object.entries(assessment.sub_scores).map(([name, value]) => el('li', {}, `${name.replaceAll('_', ' ')}: ${value}`)))
    : null;
  return el('div', { class: 'cefr' },
    el('span', { class: `cefr-badge cefr-${level}`, 'data-testid': 'cefr-level', title: 'CEFR level' }, level),
    el('div', {}, confidence, assessment.rationale && el('p', { class: 'rationale' }, assessment.rationale), subScores));
}

function grammarError(error) {
  return el('li', { class: 'grammar-error' },
    el('p', { class: 'error-head' },
      el('span', { class: 'tag' }, error.type || 'error'),
      typeof error.severity === 'string' && el('span', { class: `tag severity severity-${error.severity.toLowerCase()}` }, error.severity)),
    el('p', { class: 'correction' },
      el('del', {}, error.text), ' ', el('span', { 'aria-hidden': 'true' }, '→'), ' ',
      el('span', { class: 'visually-hidden' }, 'should be '), el('ins', {}, error.correction)),
    error.explanation && el('p', { class: 'explanation' }, error.explanation));
}

function task(item) {
  const minutes = typeof item.minutes === 'number' ? `${item.minutes} min` : null;
  return el('li', { class: 'task' },
    el('p', {}, el('strong', {}, item.title || item.type), ' ',
      item.type && el('span', { class: 'tag' }, item.type), minutes && el('span', { class: 'tag' }, minutes)),
    item.description && el('p', {}, item.description));
}

function list(title, items, render, empty) {
  return el('section', { class: 'part' },
    el('h3', {}, `${title} (${items.length})`),
    items.length ? el('ul', {}, items.map(render)) : el('p', { class: 'hint' }, empty));
}

export function analysis(result) {
  const data = result.data;
  return [
    badge(data.cefr_assessment),
    data.feedback && el('p', { class: 'feedback' }, data.feedback),
    list('Errors', data.errors, grammarError, 'No errors found.'),
    list('Strengths', data.strengths, (text) => el('li', {}, text), 'None named.'),
    list('To improve', data.improvement_areas, (text) => el('li', {}, text), 'None named.'),
    list('Recommended tasks', data.recommended_tasks, task, 'None recommended.'),
    metaLine(result, [
      result.meta?.model && `model: ${result.meta.model}${result.meta.provider ? ` (${result.meta.provider})` : ''}`,
      result.meta?.parse && `parse: ${result.meta.parse}`,
    ].filter(Boolean)),
  ];
}
