// fabric report: the timeline. Reads the run's data from <script id="data">, draws any head's
// attention on every story sentence at any probe step (a heatmap and bertviz-style arcs),
// the gradient flow at that step and the moments around it. The URL hash #step=N&head=L.H
// selects the picture, so a link (or a test) opens the page at one moment of training.
"use strict";
(function () {
  var errors = document.getElementById("errors");
  errors.textContent = (window.__errors || []).join("\n");  // caught before the page was built
  var DATA = JSON.parse(document.getElementById("data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var INFERNO = [[0, 0, 4], [27, 12, 65], [74, 12, 107], [120, 28, 109], [165, 44, 96],
    [207, 68, 70], [237, 105, 37], [251, 155, 6], [247, 209, 61], [252, 255, 164]];
  var root = document.documentElement;

  function inferno(t) {
    t = Math.min(1, Math.max(0, t)) * (INFERNO.length - 1);
    var i = Math.min(Math.floor(t), INFERNO.length - 2), f = t - i, a = INFERNO[i],
      b = INFERNO[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) {
      return Math.round(a[k] + (b[k] - a[k]) * f);
    }).join(",") + ")";
  }
  // The same ramp as the terminal: on a dark page bright is strong, on paper dark is strong.
  function ramp(w) {
    return root.dataset.theme === "dark" ? inferno(0.2 + 0.8 * w) : inferno(0.97 - 0.87 * w);
  }
  function el(name, attrs, parent, text) {
    var node = document.createElementNS(SVG, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(name, attrs, parent, text) {
    var node = document.createElement(name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  // A picture with a viewBox, so that on a narrow screen the CSS may shrink it whole
  // instead of letting it run past the edge.
  function sized(width, height, cls, name) {  // name: what a screen reader says it is
    return el("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height,
      class: cls, role: "img", "aria-label": name });
  }
  function decode(text, n) {
    var raw = atob(text), rows = [], i = 0;
    for (var q = 0; q < n; q++) {
      var row = [];
      for (var k = 0; k < n; k++) row.push(k <= q ? raw.charCodeAt(i + k) / 255 : 0);
      i += q + 1;
      rows.push(row);
    }
    return rows;
  }
  function fmt(x, d) { return x === null || x === undefined ? "—" : x.toFixed(d); }
  // A step as the terminal and the stories write it: 1400 -> "1,400".
  // a fraction as a whole percentage, with the decimals it takes never to call all (or
  // nothing) what is not: 0.996 -> "99.6%" (narrate/format.py's whole_pct)
  function wholePct(x) {
    for (var d = 0; d < 5; d++) {
      var text = (x * 100).toFixed(d), v = Number(text);
      if (!((v === 100 && x < 1) || (v === 0 && x > 0))) return text + "%";
    }
    return x > 0.5 ? ">99.9999%" : "<0.0001%";
  }
  function stepText(n) { return Number(n).toLocaleString("en-US", { maximumFractionDigits: 0 }); }

  var timeline = DATA.timeline, sentences = DATA.sentences, run = DATA.run;
  var slider = document.getElementById("step");
  var headSelect = document.getElementById("head");
  var state = { index: timeline.length - 1, head: null };

  function headKeys() {
    var keys = [];
    for (var l = 0; l < run.n_layers; l++)
      for (var h = 0; h < run.n_heads; h++) keys.push(l + "." + h);
    return keys;
  }
  function bestPronounHead() {
    var last = timeline[timeline.length - 1], best = null, top = -1;
    headKeys().forEach(function (key) {
      var row = last && last.heads[key];
      var s = row && row.scores && row.scores.pronoun;
      if (s !== undefined && s !== null && s > top) { top = s; best = key; }
    });
    return best || headKeys()[0];
  }

  // -- one sentence: heatmap and arcs ------------------------------------------------------
  function heatmap(tokens, pattern, pronouns) {
    var n = tokens.length, cell = 18, longest = 0;
    tokens.forEach(function (t) { longest = Math.max(longest, t.length); });
    var label = Math.min(14, longest) * 7 + 34, top = 20;
    var svg = sized(label + n * cell + 8, top + n * cell + 6, "heatmap",
      "Attention map: each token's row, the earlier tokens it looks at as columns");
    var rowsOf = {}, antecedent = {};
    pronouns.forEach(function (p) { rowsOf[p[0]] = p[1]; antecedent[p[1]] = true; });
    for (var k = 0; k < n; k++) {
      el("text", { x: label + k * cell + cell / 2, y: 13, "text-anchor": "middle",
        class: antecedent[k] ? "" : "tick", "font-weight": antecedent[k] ? 700 : 400 },
        svg, String(k));
    }
    for (var q = 0; q < n; q++) {
      var pronoun = rowsOf[q] !== undefined, pick = 0;
      for (var j = 0; j <= q; j++) if (pattern[q][j] > pattern[q][pick]) pick = j;
      el("text", { x: label - 6, y: top + q * cell + 13, "text-anchor": "end",
        "font-weight": pronoun ? 700 : 400, fill: pronoun ? "var(--accent)" : "var(--fg)" },
        svg, (pronoun ? "▶ " : "") + tokens[q].slice(0, 14) + " " + q);
      for (var c = 0; c <= q; c++) {
        var w = pattern[q][c];
        var rect = el("rect", { x: label + c * cell, y: top + q * cell, width: cell - 1,
          height: cell - 1, fill: ramp(w), "data-w": w.toFixed(3) }, svg);
        el("title", {}, rect, tokens[q] + " → " + tokens[c] + ": " + w.toFixed(3));
        if (pronoun && rowsOf[q] === c) {
          el("rect", { x: label + c * cell + 1, y: top + q * cell + 1, width: cell - 3,
            height: cell - 3, fill: "none", stroke: "var(--accent)", "stroke-width": 2.5 }, svg);
        } else if (pronoun && c === pick) {  // the word it chose instead of its antecedent:
          // its row's strongest cell, the darkest on paper, so the × wears a halo of the page
          el("text", { x: label + c * cell + cell / 2, y: top + q * cell + 13,
            "text-anchor": "middle", "font-weight": 700, fill: "var(--bad)", class: "pick",
            stroke: "var(--bg)", "stroke-width": 3, "paint-order": "stroke",
            "stroke-linejoin": "round" }, svg, "×");
        }
      }
    }
    return svg;
  }

  function arcs(tokens, pattern, pronouns) {
    // bertviz's head view: the sentence twice, a line from each token (left) to every token
    // it attends to (right), as opaque as the weight; pronoun rows drawn in the accent colour
    var n = tokens.length, gap = 17, longest = 0;
    tokens.forEach(function (t) { longest = Math.max(longest, t.length); });
    var col = Math.min(14, longest) * 7 + 8, span = 120;
    var svg = sized(2 * col + span, n * gap + 10, "arcs",
      "Attention as lines from each token to the tokens it looks at");
    var rowsOf = {};
    pronouns.forEach(function (p) { rowsOf[p[0]] = p[1]; });
    var lines = el("g", {}, svg);
    for (var q = 0; q < n; q++) {
      var pronoun = rowsOf[q] !== undefined;
      for (var k = 0; k <= q; k++) {
        var w = pattern[q][k];
        if (w < 0.03) continue;
        el("line", { x1: col + 4, y1: q * gap + 12, x2: col + span - 4, y2: k * gap + 12,
          stroke: pronoun ? "var(--accent)" : "var(--muted)",
          "stroke-width": pronoun ? 2.5 : 1.5, "stroke-opacity": Math.min(1, w).toFixed(3) },
          lines);
      }
    }
    for (var i = 0; i < n; i++) {
      var isPronoun = rowsOf[i] !== undefined;
      var isAntecedent = pronouns.some(function (p) { return p[1] === i; });
      el("text", { x: col, y: i * gap + 16, "text-anchor": "end",
        "font-weight": isPronoun ? 700 : 400,
        fill: isPronoun ? "var(--accent)" : "var(--fg)" }, svg, tokens[i].slice(0, 14));
      el("text", { x: col + span, y: i * gap + 16, "font-weight": isAntecedent ? 700 : 400,
        fill: isAntecedent ? "var(--accent)" : "var(--fg)" }, svg, tokens[i].slice(0, 14));
    }
    return svg;
  }

  function verdicts(tokens, pattern, pronouns, box) {
    pronouns.forEach(function (p) {
      var row = pattern[p[0]], best = 0;
      for (var k = 0; k <= p[0]; k++) if (row[k] > row[best]) best = k;
      var hit = best === p[1], digits = 2;
      // "hardest at ',' (0.13); its antecedent gets 0.13 ✗" reads as a contradiction: a
      // near tie gets the third digit that tells the two apart
      if (!hit && row[best].toFixed(2) === row[p[1]].toFixed(2)) digits = 3;
      var line = html("div", {}, box);
      html("b", {}, line, tokens[p[0]]);
      line.appendChild(document.createTextNode(" looks hardest at “" + tokens[best] + "” (" +
        row[best].toFixed(digits) + "); its antecedent “" + tokens[p[1]] + "” gets " +
        row[p[1]].toFixed(digits) + " "));
      html("span", { class: hit ? "verdict-good" : "verdict-bad" }, line,
        hit ? "✓ found" : "✗ missed");
    });
  }

  // The key to the maps and the lines, drawn with the ramp of the page's theme.
  function legend() {
    var box = document.getElementById("legend"), cell = 18, levels = [0, 0.25, 0.5, 0.75, 1];
    box.textContent = "";
    var svg = el("svg", { width: 40 + levels.length * cell + 30, height: 34, class: "key",
      role: "img", "aria-label": "attention from 0 to 1" }, box);
    el("text", { x: 0, y: 14 }, svg, "weight");
    levels.forEach(function (w, i) {
      el("rect", { x: 46 + i * cell, y: 2, width: cell - 1, height: cell - 1, fill: ramp(w),
        "data-w": String(w) }, svg);
      if (i === 0 || i === levels.length - 1 || w === 0.5)
        el("text", { x: 46 + i * cell + cell / 2, y: 31, "text-anchor": "middle",
          class: "tick" }, svg, String(w));
    });
    html("span", {}, box, "▶ a pronoun's row · outlined: its antecedent · ×: the word it " +
      "chose instead · lines: thicker and coloured from a pronoun, as opaque as the weight");
  }

  // -- gradient flow at the step -------------------------------------------------------------
  var gradSpan = (function () {
    var lo = Infinity, hi = -Infinity;
    timeline.forEach(function (t) {
      if (!t.grad) return;
      t.grad.rows.forEach(function (r) {
        ["skip", "block", "leaving"].forEach(function (k) {
          if (r[k] > 0) { lo = Math.min(lo, r[k]); hi = Math.max(hi, r[k]); }
        });
      });
      if (t.grad.embed > 0) { lo = Math.min(lo, t.grad.embed); hi = Math.max(hi, t.grad.embed); }
    });
    if (!isFinite(lo)) return [-3, 0];
    var a = Math.floor(Math.log10(lo) - 0.5), b = Math.ceil(Math.log10(hi));
    return [a, b > a ? b : a + 1];
  })();

  function gradFlow(grad) {
    var box = document.getElementById("gradflow");
    box.textContent = "";
    if (!grad) { html("p", { class: "muted" }, box, "No gradient was measured at this step."); return; }
    var rows = grad.rows.slice().sort(function (a, b) { return b.layer - a.layer; });
    var bar = 360, left = 96, height = 18 * (rows.length * 3 + 1) + 40;
    var svg = sized(left + bar + 170, height, "gradflow",
      "Gradient flowing down through each layer at step " + stepText(grad.step));
    function x(v) {
      if (!(v > 0)) return 0;
      var f = (Math.log10(v) - gradSpan[0]) / (gradSpan[1] - gradSpan[0]);
      return Math.max(1, Math.min(1, f) * bar);
    }
    var y = 4;
    function barRow(label, value, kind, note) {
      el("text", { x: left - 8, y: y + 12, "text-anchor": "end",
        "font-weight": label.charAt(0) === "L" ? 700 : 400 }, svg, label);
      var h = kind === "skip" ? 6 : 12, dy = kind === "skip" ? 6 : 3;
      var attrs = { x: left, y: y + dy, width: x(value), height: h };
      if (kind === "sum") { attrs.fill = "none"; attrs.stroke = "var(--sum)"; attrs["stroke-dasharray"] = "3 2"; }
      else attrs.fill = "var(--" + kind + ")";
      el("rect", attrs, svg);
      el("text", { x: left + bar + 6, y: y + 12, class: "tick" }, svg,
        (value === null ? "—" : value.toPrecision(3)) + (note ? " " + note : ""));
      y += 18;
    }
    rows.forEach(function (r) {
      barRow("L" + r.layer + " skip", r.skip, "skip");
      barRow("block", r.block, "block");
      barRow("↓ sum", r.leaving, "sum", "on to " + (r.layer > 0 ? "L" + (r.layer - 1) : "embed"));
    });
    if (grad.embed !== null) barRow("embed", grad.embed, "embed");
    for (var e = gradSpan[0]; e <= gradSpan[1]; e++) {
      var tx = left + (e - gradSpan[0]) / (gradSpan[1] - gradSpan[0]) * bar;
      el("line", { x1: tx, x2: tx, y1: 2, y2: y, class: "grid" }, svg);
      el("text", { x: tx, y: y + 14, "text-anchor": "middle", class: "tick" }, svg, "1e" + e);
    }
    box.appendChild(svg);
    html("p", { class: "muted" }, box, "Step " + stepText(grad.step) +
      ", one log axis for the whole run. " +
      "Thin bar: through the residual skip; thick: through the block (attention + MLP); " +
      "dashed (↓ sum): skip + block added as vectors, what flows on to the layer below" +
      (grad.embed !== null ? "; embed: what arrives at the embeddings, L0's sum." : "."));
  }

  // -- moments around the step ---------------------------------------------------------------
  function moments(index) {
    var box = document.getElementById("moments");
    box.textContent = "";
    var step = timeline[index].step;
    var from = index > 0 ? timeline[index - 1].step : -1;
    var to = index + 1 < timeline.length ? timeline[index + 1].step : Infinity;
    var near = DATA.moments.filter(function (m) { return m.step > from && m.step < to; });
    if (!near.length) {
      html("p", { class: "muted" }, box, "No moment between the neighbouring probes (steps " +
        stepText(Math.max(from, 0)) + " to " + stepText(isFinite(to) ? to : run.steps) + ").");
      return;
    }
    var list = html("ul", { class: "moments" }, box);
    near.forEach(function (m) {
      var li = html("li", { class: m.step <= step ? "near" : "" }, list);
      html("span", { class: "at" }, li,
        "step " + stepText(m.step) + (m.step > step ? " (just after)" : ""));
      li.appendChild(document.createTextNode(" " + m.text));  // copied, "step 300 L0H1: …"
    });
  }

  // -- the step, marked on the loss charts ---------------------------------------------------
  function markCharts(step) {
    document.querySelectorAll("svg.loss-chart").forEach(function (svg) {
      var old = svg.querySelector(".marker");
      if (old) old.remove();
      var d = svg.dataset, s0 = Number(d.s0), s1 = Number(d.s1);
      var x = Number(d.x0) + (step - s0) / Math.max(s1 - s0, 1) * (Number(d.x1) - Number(d.x0));
      el("line", { class: "marker", x1: x, x2: x, y1: d.y0, y2: d.y1 }, svg);
    });
  }

  // -- the whole picture -------------------------------------------------------------------
  function draw() {
    var probe = timeline[state.index], key = state.head;
    slider.value = String(state.index);
    headSelect.value = key;
    var row = probe.heads[key] || {}, scores = row.scores || {};
    var where = "step " + stepText(probe.step) + " of " +
      stepText(Math.max(run.planned || 0, run.steps));
    document.getElementById("step-label").textContent = where;
    slider.setAttribute("aria-valuetext", where);  // a screen reader says the step, not "14"
    var facts = "L" + key.replace(".", "H") + " at step " + stepText(probe.step) +
      ": pronoun score " +
      fmt(scores.pronoun, 2) + ", accuracy " + (row.acc === null || row.acc === undefined ? "—" :
      wholePct(row.acc)) + " · validation loss " + fmt(probe.val, 3) +
      (run.floor !== null ? " (floor " + fmt(run.floor, 3) + ")" : "");
    document.getElementById("head-facts").textContent = facts;
    legend();
    var box = document.getElementById("sentences");
    box.textContent = "";
    sentences.forEach(function (s, i) {
      var encoded = probe.patterns[i] && probe.patterns[i][key];
      var card = html("div", { class: "sentence" }, box);
      html("h3", {}, card, s.sentence);
      if (!encoded) { html("p", { class: "muted" }, card, "Not probed at this step."); return; }
      var pattern = decode(encoded, s.tokens.length);
      var pair = html("div", { class: "pair" }, card);
      pair.appendChild(heatmap(s.tokens, pattern, s.pronouns));
      pair.appendChild(arcs(s.tokens, pattern, s.pronouns));
      verdicts(s.tokens, pattern, s.pronouns, card);
    });
    gradFlow(probe.grad);
    moments(state.index);
    markCharts(probe.step);
    var hash = "#step=" + probe.step + "&head=" + key;
    var view = /(?:^#|&)(view=[\w-]+)/.exec(location.hash);
    if (view) hash += "&" + view[1];
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  function readHash() {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length === 2) params[kv[0]] = decodeURIComponent(kv[1]);
    });
    if (params.step !== undefined) {
      var want = Number(params.step), best = 0;
      timeline.forEach(function (t, i) {
        if (Math.abs(t.step - want) < Math.abs(timeline[best].step - want)) best = i;
      });
      state.index = best;
    }
    if (params.head && headKeys().indexOf(params.head) >= 0) state.head = params.head;
  }

  function setup() {
    if (!timeline.length) {
      document.getElementById("timeline-body").textContent = "This run has no probe yet.";
      return;
    }
    headKeys().forEach(function (key) {
      var opt = html("option", { value: key }, headSelect, "L" + key.replace(".", "H"));
      var role = (DATA.roles || {})[key];
      if (role) opt.textContent += " · " + role;
    });
    slider.max = String(timeline.length - 1);
    state.head = bestPronounHead();
    readHash();
    slider.addEventListener("input", function () { state.index = Number(slider.value); draw(); });
    headSelect.addEventListener("change", function () { state.head = headSelect.value; draw(); });
    window.addEventListener("hashchange", function () { readHash(); draw(); });
    var view = /(?:^#|&)view=([\w-]+)/.exec(location.hash);  // e.g. #step=300&view=timeline
    draw();
    if (view && document.getElementById(view[1])) {
      document.querySelectorAll("main > section").forEach(function (section) {
        section.hidden = section.id !== view[1];
      });
    }
  }

  document.getElementById("theme-toggle").addEventListener("click", function () {
    root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
    if (timeline.length) draw();
  });
  // Paper is white whatever the screen: a dark page prints in the light palette, its maps
  // redrawn in the paper ramp (darker is more), and returns to dark after.
  var screenTheme = null;
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
    if (root.dataset.theme === "dark") {
      screenTheme = "dark";
      root.dataset.theme = "light";
      if (timeline.length) draw();
    }
  });
  window.addEventListener("afterprint", function () {
    if (screenTheme === null) return;
    root.dataset.theme = screenTheme;
    screenTheme = null;
    if (timeline.length) draw();
  });
  setup();
  document.body.dataset.ready = "1";
})();
