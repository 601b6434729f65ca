// The gallery's views, drawn from the JSON embedded above. Everything from the data goes in as
// text (textContent, attributes), never as HTML. The state lives in the address's #fragment,
// so a view can be bookmarked: #view=xy&x=KEY&y=KEY&node=LABEL&status=failed&f.KEY=VALUE
// The X/Y view shows one output node, and says which: the one in the address, else the one the
// report chose (data.xy: the grid's node, or the node whose images differ most).
(function () {
  "use strict";
  var t0 = performance.now();
  var data = JSON.parse(document.getElementById("gallery-data").textContent);
  var keys = data.keys || [];
  var xy = data.xy || {};
  var $ = function (id) { return document.getElementById(id); };
  var state = readHash();

  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    var s = { view: p.get("view") || "all", node: p.get("node") || "", status: p.get("status") || "",
              x: p.get("x") || "", y: p.get("y"), filters: {} };
    p.forEach(function (v, k) { if (k.indexOf("f.") === 0) s.filters[k.slice(2)] = v; });
    if (keys.indexOf(s.x) < 0) s.x = keys.indexOf(xy.x) >= 0 ? xy.x : (keys.length ? keys[keys.length - 1] : "");
    if (s.y === null || (s.y !== "" && keys.indexOf(s.y) < 0)) {
      // The grid's rows when its columns are shown, else the first key.
      var gridY = xy.x === s.x && typeof xy.y === "string" && (xy.y === "" || keys.indexOf(xy.y) >= 0);
      s.y = gridY ? xy.y : (keys.length > 1 ? keys[0] : "");
    }
    return s;
  }

  function writeHash() {
    var p = new URLSearchParams();
    if (state.view !== "all") p.set("view", state.view);
    if (state.node) p.set("node", state.node);
    if (state.status) p.set("status", state.status);
    if (state.view === "xy") { p.set("x", state.x); p.set("y", state.y); }
    Object.keys(state.filters).forEach(function (k) { if (state.filters[k] !== "") p.set("f." + k, state.filters[k]); });
    history.replaceState(null, "", "#" + p.toString());
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function fill(select, options, value) {
    select.textContent = "";
    options.forEach(function (o) {
      var opt = el("option", null, o[1]);
      opt.value = o[0];
      select.appendChild(opt);
    });
    select.value = value;
  }

  function setup() {
    $("view").value = state.view;
    fill($("node"), [["", "every output"]].concat(data.nodes.map(function (n) { return [n, n]; })), state.node);
    $("status").value = state.status;
    fill($("x"), keys.map(function (k) { return [k, k]; }), state.x);
    fill($("y"), [["", "(none)"]].concat(keys.map(function (k) { return [k, k]; })), state.y);
    var filters = $("filters");
    keys.forEach(function (k) {
      var label = el("label", null, k + " ");
      var select = el("select", "filter");
      select.dataset.key = k;
      fill(select, [["", "any"]].concat((data.values[k] || []).map(function (v) { return [v, v]; })),
           state.filters[k] || "");
      label.appendChild(select);
      filters.appendChild(label);
    });
    $("controls").addEventListener("change", function (ev) {
      var t = ev.target;
      if (t.classList.contains("filter")) state.filters[t.dataset.key] = t.value;
      else if (t.id) state[t.id] = t.value;
      writeHash();
      render();
    });
    window.addEventListener("hashchange", function () {
      state = readHash();
      render();
    });
  }

  function matches(job, skip) {
    if (state.status && job.status !== state.status) return false;
    for (var k in state.filters) {
      if (skip && skip.indexOf(k) >= 0) continue;
      var want = state.filters[k];
      if (want !== "" && job.sweep[k] !== want) return false;
    }
    return true;
  }

  // The node the X/Y view shows, and why it is that one.
  function xyNode() {
    if (state.node && data.nodes.indexOf(state.node) >= 0) return [state.node, "chosen"];
    if (xy.node && data.nodes.indexOf(xy.node) >= 0) return [xy.node, xy.why || "default"];
    return [data.nodes[0] || "", "the first output"];
  }

  function filesOf(job, node) {
    return job.files.filter(function (f) { return !node || f.node === node; });
  }

  function sweepText(job) {
    return keys.filter(function (k) { return k in job.sweep; })
      .map(function (k) { return k + ": " + job.sweep[k]; }).join(" · ");
  }

  function reasonOf(job) {
    if (job.status === "failed") return "failed: " + (job.error || "no error message");
    if (job.status === "not_run") return "not run yet";
    return "no output";
  }

  function thumbImg(file, job) {
    if (!file.thumb && !/\.(png|jpe?g|webp|gif)$/i.test(file.name)) {
      // No thumbnail (a video, or a file this build cannot decode): a link to it.
      var link = el("a", "thumb-file", file.name);
      link.href = file.src;
      link.dataset.file = file.name;
      return link;
    }
    var img = el("img", "thumb");
    img.loading = "lazy";
    img.decoding = "async";
    img.src = file.thumb || file.src;
    img.alt = file.name;
    img.dataset.job = job.job;
    img.dataset.file = file.name;
    img.addEventListener("click", function (ev) { ev.stopPropagation(); details(job, file); });
    return img;
  }

  function renderAll(main) {
    var grid = el("div");
    grid.id = "thumbs";
    var shown = 0;
    data.jobs.forEach(function (job) {
      if (!matches(job)) return;
      var files = filesOf(job, state.node);
      if (files.length === 0 && job.status !== "completed") {
        var fig = el("figure", "entry failure");
        fig.dataset.job = job.job;
        fig.appendChild(el("div", "reason", reasonOf(job)));
        fig.appendChild(el("figcaption", null, "#" + job.job + " · " + sweepText(job)));
        fig.addEventListener("click", function () { details(job, null); });
        grid.appendChild(fig);
        return;
      }
      files.forEach(function (file) {
        var fig = el("figure", "entry");
        fig.dataset.job = job.job;
        fig.appendChild(thumbImg(file, job));
        fig.appendChild(el("figcaption", null, "#" + job.job + " · " + file.node + " · " + sweepText(job)));
        fig.addEventListener("click", function () { details(job, file); });
        grid.appendChild(fig);
        shown++;
      });
    });
    main.appendChild(grid);
    return shown;
  }

  function renderXY(main) {
    var x = state.x, y = state.y;
    var shows = xyNode();
    var node = shows[0];
    var xs = data.values[x] || [];
    var ys = y ? (data.values[y] || []) : [""];
    var table = el("table");
    table.id = "xy";
    var caption = el("caption", null, node ? "Output node: " + node + " (" + shows[1] + ")" : "No output node");
    caption.id = "xy-node";
    caption.dataset.node = node;
    table.appendChild(caption);
    var head = el("tr");
    head.appendChild(el("th", "corner", y ? y + " ↓  " + x + " →" : x + " →"));
    xs.forEach(function (v) { head.appendChild(el("th", "col", v)); });
    table.appendChild(head);
    var shown = 0;
    ys.forEach(function (yv) {
      var tr = el("tr");
      tr.appendChild(el("th", "row", y ? yv : ""));
      xs.forEach(function (xv) {
        var td = el("td");
        td.dataset.x = xv;
        if (y) td.dataset.y = yv;
        var jobs = data.jobs.filter(function (job) {
          return job.sweep[x] === xv && (!y || job.sweep[y] === yv) && matches(job, [x, y]);
        });
        var hit = null;
        jobs.some(function (job) {
          var f = filesOf(job, node).filter(function (f) { return f.exists; })[0];
          if (f) hit = [job, f];
          return !!f;
        });
        if (hit) {
          td.appendChild(thumbImg(hit[1], hit[0]));
          shown++;
        } else {
          td.className = "empty";
          td.appendChild(el("div", "reason", jobs.length ? reasonOf(jobs[0]) : "not in the sweep"));
          if (jobs.length) td.addEventListener("click", function () { details(jobs[0], null); });
        }
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    main.appendChild(table);
    return shown;
  }

  function kvTable(obj) {
    var t = el("table");
    Object.keys(obj || {}).forEach(function (k) {
      var tr = el("tr");
      tr.appendChild(el("td", null, k));
      var v = obj[k];
      tr.appendChild(el("td", null, typeof v === "string" ? v : JSON.stringify(v)));
      t.appendChild(tr);
    });
    return t;
  }

  function details(job, file) {
    var body = $("details-body");
    body.textContent = "";
    body.appendChild(el("h2", null, "Job #" + job.job + " · " + job.status));
    if (job.error) body.appendChild(el("p", "reason", job.error));
    if (file) {
      var a = el("a", null, file.name);
      a.href = file.src;
      body.appendChild(a);
      var img = el("img");
      img.src = file.src;
      img.alt = file.name;
      body.appendChild(img);
    }
    body.appendChild(el("h3", null, "Sweep"));
    body.appendChild(kvTable(job.sweep));
    body.appendChild(el("h3", null, "Inputs"));
    body.appendChild(kvTable(job.inputs));
    if (file && file.meta) {
      body.appendChild(el("h3", null, "Sidecar"));
      body.appendChild(el("pre", "meta", JSON.stringify(file.meta, null, 2)));
    }
    var dialog = $("details");
    if (dialog.showModal) { if (!dialog.open) dialog.showModal(); } else dialog.setAttribute("open", "");
  }

  function syncControls() {
    $("view").value = state.view;
    // "every output" is no choice in the X/Y view: a cell holds one image.
    var every = $("node").querySelector("option[value='']");
    if (every) every.disabled = state.view === "xy";
    $("node").value = state.view === "xy" ? xyNode()[0] : state.node;
    $("status").value = state.status;
    $("x").value = state.x;
    $("y").value = state.y;
    Array.prototype.forEach.call(document.querySelectorAll("select.filter"), function (s) {
      s.value = state.filters[s.dataset.key] || "";
    });
  }

  function render() {
    var start = performance.now();
    syncControls();
    var main = $("main");
    main.textContent = "";
    $("axes").hidden = state.view !== "xy";
    var shown = state.view === "xy" ? renderXY(main) : renderAll(main);
    $("shown").textContent = shown + " images shown" +
      (state.view === "xy" && xyNode()[0] ? " · output node " + xyNode()[0] : "");
    document.body.dataset.shown = shown;
    document.body.dataset.renderMs = (performance.now() - start).toFixed(1);
    document.body.dataset.loadMs = (performance.now() - t0).toFixed(1);
    document.body.dataset.ready = "1";
  }

  setup();
  render();
})();
