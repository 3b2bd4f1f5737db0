// The ddim serve page: plain JavaScript, no build step, no third-party code.
'use strict';

const $ = (id) => document.getElementById(id);
let running = null; // the AbortController of the stream in flight
const TOKEN_KEY = 'ddim-serve-token';

// Every API call: with the token once the user gave it (kept for this browser tab's session).
async function api(url, init = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = new Headers(init.headers || {});
  if (token) headers.set('Authorization', `Bearer ${token}`);
  const response = await fetch(url, { ...init, headers });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken(token ? 'that token was refused' : '');
  }
  return response;
}

function askForToken(message) {
  $('token-panel').hidden = false;
  setStatus($('token-status'), message, Boolean(message));
  $('token').focus();
}

function setStatus(element, text, isError) {
  element.textContent = text;
  element.classList.toggle('error', Boolean(isError));
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${response.status}: ${body.error}`;
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

async function showModel() {
  try {
    const response = await api('/v1/model');
    if (!response.ok) throw new Error(await errorText(response));
    const model = await response.json();
    $('token-panel').hidden = true;
    showClasses(model.classNames);
    const c = model.config;
    $('model-info').textContent = `${c.channels}×${c.imageSize}×${c.imageSize}, widths ${c.widths.join('-')}, `
      + `${model.parameters.toLocaleString()} parameters on ${model.device} (at most ${model.limits.maxCount} images, `
      + `${model.limits.maxSteps} steps)`;
    $('count').max = model.limits.maxCount;
    $('steps').max = model.limits.maxSteps;
    $('frames').max = model.limits.maxCount;
  } catch (e) {
    $('model-info').textContent = `cannot read the model: ${e.message}`;
  }
}

// A class model gets a class picker (and a guidance weight); an unconditional one shows neither.
function showClasses(names) {
  const select = $('class');
  while (select.options.length > 1) select.remove(1);
  names.forEach((name, index) => select.add(new Option(`${index}: ${name}`, String(index))));
  $('class-fields').hidden = names.length === 0;
}

// The class fields of a request, when a class is picked.
function classFields() {
  if ($('class-fields').hidden || $('class').value === '') return {};
  return { class: $('class').value, guidance: $('guidance').value };
}

// One <img> per requested image, filled by previews and then by the result.
function prepareGrid(count, seed, firstIndex) {
  const grid = $('grid');
  grid.replaceChildren();
  for (let i = 0; i < count; i++) {
    const img = document.createElement('img');
    img.alt = `seed ${seed}, image ${firstIndex + i}`;
    img.dataset.seed = seed;
    img.dataset.index = firstIndex + i;
    img.addEventListener('click', () => showDetails(img));
    grid.appendChild(img);
  }
}

function fillGrid(images, final) {
  const cells = $('grid').children;
  const first = Number(cells[0]?.dataset.index ?? 0);
  for (const image of images) {
    const cell = cells[image.index - first];
    if (!cell) continue;
    cell.src = `data:image/png;base64,${image.png}`;
    if (image.className !== undefined) cell.dataset.className = image.className;
    if (final) cell.dataset.final = 'true';
  }
}

function showDetails(img) {
  if (!img.src) return;
  for (const cell of $('grid').children) cell.classList.toggle('selected', cell === img);
  $('details').hidden = false;
  $('details-image').src = img.src;
  const seed = img.dataset.seed, index = img.dataset.index;
  const className = img.dataset.className ? `, class ${img.dataset.className}` : '';
  $('details-text').textContent = `seed ${seed}, index ${index}${className}` + (img.dataset.final ? '' : ' (still denoising)');
  $('download').href = img.src;
  $('download').download = `ddim-seed${seed}-index${index}.png`;
  $('use-as-from').onclick = () => { $('from').value = seed; };
  $('use-as-to').onclick = () => { $('to').value = seed; };
}

// Reads a Server-Sent Events body and calls onEvent(name, data) for each event.
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

async function generate(event) {
  event.preventDefault();
  if (running) running.abort();
  const count = Number($('count').value), seed = $('seed').value;
  const query = new URLSearchParams({ count, steps: $('steps').value, seed, sampler: $('sampler').value, ...classFields() });
  prepareGrid(count, seed, 0);
  $('progress').value = 0;
  setStatus($('status'), 'queued…');
  const controller = new AbortController();
  running = controller;
  $('cancel').disabled = false;
  const started = performance.now();
  try {
    const response = await api(`/v1/samples/stream?${query}`, { signal: controller.signal });
    if (!response.ok) throw new Error(await errorText(response));
    await readEvents(response, (name, data) => {
      if (name === 'progress') {
        $('progress').value = data.fraction;
        setStatus($('status'), `denoising: step ${data.stepsDone} of ${data.totalSteps}`);
      } else if (name === 'preview') {
        fillGrid(data.images, false);
      } else if (name === 'result') {
        fillGrid(data.images, true);
        $('progress').value = 1;
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        const shared = data.batch.requests > 1 ? `, sampled with ${data.batch.requests - 1} other request(s)` : '';
        setStatus($('status'), `${data.images.length} image(s) in ${seconds} s${shared}. Click one for its seed and a download.`);
        $('grid').dataset.done = 'true';
      } else if (name === 'error') {
        setStatus($('status'), `${data.status}: ${data.error}`, true);
      }
    });
  } catch (e) {
    if (e.name === 'AbortError') setStatus($('status'), 'cancelled');
    else setStatus($('status'), e.message, true);
  } finally {
    if (running === controller) running = null;
    $('cancel').disabled = running === null;
  }
}

async function interpolate(event) {
  event.preventDefault();
  const body = {
    from: $('from').value, to: $('to').value, frames: $('frames').value, steps: $('interpolate-steps').value, ...classFields(),
  };
  setStatus($('interpolate-status'), 'sampling the strip…');
  try {
    const response = await api('/v1/interpolations', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await errorText(response));
    const result = await response.json();
    const strip = $('strip');
    strip.replaceChildren();
    for (const frame of result.images) {
      const img = document.createElement('img');
      img.src = `data:image/png;base64,${frame.png}`;
      img.alt = `frame ${frame.frame} from seed ${result.from} to seed ${result.to}`;
      strip.appendChild(img);
    }
    setStatus($('interpolate-status'), `${result.images.length} frames in ${result.seconds.toFixed(1)} s`);
  } catch (e) {
    setStatus($('interpolate-status'), e.message, true);
  }
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = '';
  showModel();
});
$('sample-form').addEventListener('submit', generate);
$('interpolate-form').addEventListener('submit', interpolate);
$('cancel').addEventListener('click', () => { if (running) running.abort(); });
$('random-seed').addEventListener('click', () => { $('seed').value = Math.floor(Math.random() * 1e9); });
showModel();
