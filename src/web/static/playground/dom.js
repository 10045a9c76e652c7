// Building result markup. Everything the service sends is set as text, never parsed as HTML:
// a learner's text or a model's reply cannot inject markup into the page.

/** `el('p', {class: 'x'}, 'text', child)`: an element with attributes and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A definition list from `[term, value]` pairs, leaving out absent values. */
export function details(pairs) {
  const list = el('dl', { class: 'details' });
  for (const [term, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    list.append(el('dt', {}, term), el('dd', {}, value));
  }
  return list;
}

/** What every call shows: served from the cache or not, the request id, the time it took. */
export function metaLine(result, extra = []) {
  const cached = result.meta?.cached;
  return el('p', { class: 'meta' },
    el('span', { class: 'meta-cached' }, `cached: ${cached === true ? 'yes' : cached === false ? 'no' : 'n/a'}`),
    el('span', { class: 'meta-request-id' }, 'request id: ', el('code', {}, result.requestId || 'none')),
    el('span', { class: 'meta-latency' }, `latency: ${Math.round(result.latencyMs)} ms`),
    extra.map((text) => el('span', {}, text)));
}

/** Replace what a result area shows. */
export function show(target, ...children) {
  target.replaceChildren(...children.flat().filter(Boolean));
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

export function formatSeconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}
