// trajfm report page script: renders the inlined Vega-Lite charts and the trace drill-down.
// Every string from the run (trace text, titles, model names) goes into the DOM through textContent or
// option.value, never innerHTML, so untrusted trace text cannot become markup or script.
(function () {
  'use strict';

  function readJson(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === 'text') node.textContent = attrs[k];
        else if (k === 'cls') node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }

  // ---- charts ---------------------------------------------------------------------------------------------
  var charts = readJson('trajfm-charts');
  Object.keys(charts).forEach(function (name) {
    var target = document.getElementById('chart-' + name);
    if (!target) return;
    // ast: Vega evaluates chart expressions with its interpreter, so the page's CSP needs no 'unsafe-eval'.
    window.vegaEmbed(target, charts[name], { actions: false, renderer: 'svg', ast: true })
      .then(function () { target.setAttribute('data-rendered', 'true'); })
      .catch(function (err) {
        target.textContent = 'This chart could not be drawn: ' + err;
        console.error('trajfm chart ' + name + ':', err);
      });
  });

  // ---- drill-down -----------------------------------------------------------------------------------------
  var drill = readJson('trajfm-traces');
  var modeNames = readJson('trajfm-modes');
  var traces = drill.traces;
  var byId = {};
  traces.forEach(function (t) { byId[t.id] = t; });
  var PAGE = 150;
  var shown = PAGE;
  var tbody = document.querySelector('#trace-list tbody');
  var detail = document.getElementById('trace-detail');
  var moreButton = document.getElementById('more');
  var f = {
    model: document.getElementById('f-model'),
    mode: document.getElementById('f-mode'),
    cluster: document.getElementById('f-cluster'),
    outcome: document.getElementById('f-outcome'),
    text: document.getElementById('f-text'),
  };

  function matches(t) {
    if (f.model.value && t.model !== f.model.value) return false;
    if (f.mode.value === '__none__' && t.modes.length) return false;
    if (f.mode.value && f.mode.value !== '__none__' &&
        !t.modes.some(function (m) { return m.mode === f.mode.value; })) return false;
    if (f.cluster.value !== '' &&
        !t.novel.some(function (n) { return String(n.cluster) === f.cluster.value; })) return false;
    if (f.outcome.value === 'failed' && t.completed !== false) return false;
    if (f.outcome.value === 'completed' && t.completed !== true) return false;
    if (f.outcome.value === 'error' && t.status === 'ok') return false;
    var q = f.text.value.trim().toLowerCase();
    if (q && (t.id + '\n' + (t.task || '') + '\n' + t.summary).toLowerCase().indexOf(q) < 0) return false;
    return true;
  }

  // The list shows the shortest tail of a path-like id that no other trace shares (the model has its own
  // column), so two runs' "0007" never look alike; the full id is the tooltip.
  var shortIds = (function () {
    var out = {};
    var pending = traces.map(function (t) { return t.id; });
    for (var k = 1; pending.length; k++) {
      var tails = {};
      var tail = function (id) { return String(id).split('/').slice(-k).join('/'); };
      pending.forEach(function (id) { var x = tail(id); tails[x] = (tails[x] || 0) + 1; });
      pending = pending.filter(function (id) {
        var x = tail(id);
        var whole = x === String(id);
        if (tails[x] === 1 || whole) { out[id] = whole ? x : '…/' + x; return false; }
        return true;
      });
    }
    return out;
  })();

  function shortId(id) {
    return shortIds[id] || String(id);
  }

  function outcomeText(t) {
    if (!t.status) return 'not diagnosed';
    if (t.status !== 'ok') return 'diagnosis ' + t.status;
    return t.completed === true ? 'yes' : (t.completed === false ? 'no' : '?');
  }

  function renderList(resetPage) {
    if (resetPage) shown = PAGE;
    var hits = traces.filter(matches);
    tbody.textContent = '';
    hits.slice(0, shown).forEach(function (t) {
      var row = el('tr', { 'data-trace': t.id, tabindex: '0' }, [
        el('td', { cls: 'tid', text: shortId(t.id), title: t.id }),
        el('td', { text: t.model }),
        el('td', { cls: 'oc ' + (t.completed === false ? 'bad' : ''), text: outcomeText(t) }),
        el('td', { text: t.modes.map(function (m) { return m.mode; }).join(' ') + (t.novel.length ? ' +' + t.novel.length + ' novel' : '') }),
      ]);
      row.addEventListener('click', function () { openTrace(t.id, false); });
      row.addEventListener('keydown', function (e) { if (e.key === 'Enter') openTrace(t.id, false); });
      tbody.appendChild(row);
    });
    document.getElementById('f-count').textContent =
      'showing ' + Math.min(shown, hits.length) + ' of ' + hits.length + ' matching (' + traces.length + ' traces)';
    moreButton.hidden = hits.length <= shown;
  }

  function truncNote(shownText, fullLen) {
    if (shownText === null || shownText === undefined || shownText.length >= fullLen) return null;
    return el('div', { cls: 'trunc', text: '… truncated: showing ' + shownText.length.toLocaleString() + ' of ' +
      fullLen.toLocaleString() + ' characters' });
  }

  function block(label, text, fullLen) {
    return el('div', { cls: 'blk' }, [el('div', { cls: 'lbl', text: label }), el('pre', { text: text || '' }),
      truncNote(text, fullLen)]);
  }

  function openTrace(id, scroll) {
    var t = byId[id];
    detail.textContent = '';
    if (!t) {
      detail.appendChild(el('p', { cls: 'callout', text: 'No trace with id ' + id + ' in this report.' }));
      return;
    }
    Array.prototype.forEach.call(tbody.querySelectorAll('tr'), function (r) {
      r.classList.toggle('sel', r.getAttribute('data-trace') === id);
    });
    var cited = {};
    t.modes.forEach(function (m) { m.steps.forEach(function (s) { (cited[s] = cited[s] || []).push(m.mode); }); });
    t.novel.forEach(function (n) { n.steps.forEach(function (s) { (cited[s] = cited[s] || []).push('novel'); }); });

    var facts = [t.model, t.scenario, t.multi === null ? null : (t.multi ? 'multi-agent' : 'single-agent'),
      'completed: ' + outcomeText(t), t.correct === null ? null : ('source says ' + (t.correct ? 'correct' : 'incorrect'))]
      .filter(function (x) { return x; }).join(' · ');
    detail.appendChild(el('h3', { cls: 'tid', text: t.id }));
    detail.appendChild(el('p', { cls: 'muted', text: facts }));
    if (t.status !== 'ok') detail.appendChild(el('p', { cls: 'callout', text: 'Diagnosis ' + t.status + ': ' + (t.error || '') }));
    if (t.summary) detail.appendChild(el('p', { cls: 'summary', text: t.summary }));
    if (t.rc_step !== null) {
      detail.appendChild(el('p', {}, [el('b', { text: 'Root cause: ' }),
        'step ' + t.rc_step + (t.rc_agent ? ' (' + t.rc_agent + ')' : '')]));
    }
    if (t.modes.length) {
      var ul = el('ul', { cls: 'findings' });
      t.modes.forEach(function (m) {
        ul.appendChild(el('li', {}, [
          el('span', { cls: 'code', text: m.mode }), ' ', el('b', { text: modeNames[m.mode] || '' }),
          m.steps.length ? el('span', { cls: 'muted', text: ' · step ' + m.steps.join(', ') }) : null,
          m.verified ? null : el('span', { cls: 'tag warn', text: 'unverified' }),
          m.evidence ? el('blockquote', { text: m.evidence }) : null,
          m.rationale ? el('div', { cls: 'muted', text: m.rationale }) : null,
        ]));
      });
      detail.appendChild(el('h4', { text: 'Failure modes' }));
      detail.appendChild(ul);
    }
    if (t.novel.length) {
      var nl = el('ul', { cls: 'findings' });
      t.novel.forEach(function (n) {
        nl.appendChild(el('li', {}, [el('b', { text: n.title }),
          n.steps.length ? el('span', { cls: 'muted', text: ' · step ' + n.steps.join(', ') }) : null,
          n.description ? el('div', { text: n.description }) : null,
          n.evidence ? el('blockquote', { text: n.evidence }) : null]));
      });
      detail.appendChild(el('h4', { text: 'Novel failure modes' }));
      detail.appendChild(nl);
    }
    detail.appendChild(el('h4', { text: 'Task' }));
    detail.appendChild(block('', t.task, t.task_len));
    detail.appendChild(el('h4', { text: 'Steps (' + t.steps.length + ')' }));
    var steps = el('ol', { cls: 'steps' });
    t.steps.forEach(function (s) {
      var idx = s[0], kind = s[1], agent = s[2], tool = s[3], depth = s[4], isErr = s[5];
      var classes = ['step', 'k-' + String(kind).replace(/[^a-z_]/gi, '')];
      if (cited[idx]) classes.push('ev');
      if (idx === t.rc_step) classes.push('rc');
      if (isErr) classes.push('err');
      var head = [el('span', { cls: 'idx', text: String(idx) }), el('span', { cls: 'kind', text: kind })];
      if (agent) head.push(el('span', { cls: 'agent', text: agent }));
      if (tool) head.push(el('span', { cls: 'tool', text: tool }));
      if (isErr) head.push(el('span', { cls: 'tag warn', text: 'error' }));
      if (cited[idx]) head.push(el('span', { cls: 'tag ev', text: 'evidence: ' + cited[idx].join(', ') }));
      if (idx === t.rc_step) head.push(el('span', { cls: 'tag rc', text: 'root cause' }));
      var li = el('li', { cls: classes.join(' '), style: 'margin-left:' + (Math.min(depth, 6) * 18) + 'px' }, [
        el('div', { cls: 'shead' }, head), el('pre', { text: s[6] || '' }), truncNote(s[6], s[7]),
      ]);
      if (s[8]) { li.appendChild(el('pre', { cls: 'input', text: s[8] })); var tn = truncNote(s[8], s[9]); if (tn) li.appendChild(tn); }
      steps.appendChild(li);
    });
    detail.appendChild(steps);
    detail.appendChild(el('h4', { text: 'Final answer' }));
    detail.appendChild(block('', t.answer === null ? '(none)' : t.answer, t.answer_len));
    detail.scrollTop = 0;
    if (scroll) document.getElementById('traces').scrollIntoView();
  }

  function fromHash() {
    var h = window.location.hash;
    if (h.indexOf('#trace=') === 0) {
      var id = decodeURIComponent(h.slice(7));
      openTrace(id, true);
    }
  }

  ['model', 'mode', 'cluster', 'outcome'].forEach(function (k) { f[k].addEventListener('change', function () { renderList(true); }); });
  f.text.addEventListener('input', function () { renderList(true); });
  moreButton.addEventListener('click', function () { shown += PAGE; renderList(false); });
  window.addEventListener('hashchange', fromHash);
  renderList(true);
  fromHash();
})();
