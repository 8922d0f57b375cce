/*
 * dma.js - progressive enhancement for the Digital maturity assessment
 * service. Every page works without this file; it only makes things nicer.
 *
 * No dependencies, no inline handlers (CSP: script-src 'self'). Loaded with
 * `defer`, so the DOM is ready when it runs.
 *
 * Features (each one is independent and fails quietly):
 *   a) errorSummary  - focus the error summary on page load; clicking a link
 *                      in it focuses the field and scrolls its label/legend
 *                      into view.
 *   b) conditionals  - [data-dma-conditional][data-controller][data-values]
 *                      are shown while a matching radio/checkbox/select value
 *                      is chosen. Elements with [data-show-if] (JSON) are
 *                      handed to the hook window.dma.showIf(condition, form),
 *                      which by default leaves them as the server rendered.
 *   c) autosave      - form[data-autosave-url] posts its fields 800 ms after
 *                      the last input; status in [data-autosave-status].
 *   d) sortableTable - table[data-sortable]: header buttons sort the rows.
 *   e) print         - opens <details> before printing, restores after.
 *
 * Public hook: window.dma = { init, initConditionals, evaluateConditionals,
 *   showIf, autosave: { saveNow }, sortTable, version }.
 */
(function () {
  "use strict";

  var dma = window.dma || {};
  window.dma = dma;

  dma.version = "1";

  document.documentElement.classList.add("dma-js");

  /* ------------------------------------------------------------------ */
  /* Helpers                                                            */
  /* ------------------------------------------------------------------ */

  function toArray(list) {
    return Array.prototype.slice.call(list || []);
  }

  function $all(selector, root) {
    return toArray((root || document).querySelectorAll(selector));
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function cssEscape(value) {
    if (window.CSS && typeof window.CSS.escape === "function") {
      return window.CSS.escape(value);
    }
    return String(value).replace(/["\\]/g, "\\$&");
  }

  /* ------------------------------------------------------------------ */
  /* a) Error summary                                                   */
  /* ------------------------------------------------------------------ */

  function initErrorSummary() {
    var summary = document.querySelector(".dma-error-summary, [data-module='dma-error-summary']");
    if (!summary) {
      return;
    }
    if (!summary.hasAttribute("tabindex")) {
      summary.setAttribute("tabindex", "-1");
    }
    // Remove the tabindex when focus leaves so it is not a tab stop later.
    summary.addEventListener("blur", function () {
      summary.removeAttribute("tabindex");
    }, { once: true });
    summary.focus();

    summary.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[href^='#']") : null;
      if (!link) {
        return;
      }
      var id = decodeURIComponent(link.getAttribute("href").slice(1));
      var input = id ? document.getElementById(id) : null;
      if (!input) {
        return;
      }
      event.preventDefault();
      focusField(input);
    });
  }

  // Scroll the question's legend (or label) into view, then focus the field
  // without a second jump, so the question text is visible above the field.
  function focusField(input) {
    var fieldset = input.closest("fieldset");
    var legend = fieldset ? fieldset.querySelector("legend") : null;
    var label = input.id ? document.querySelector("label[for='" + cssEscape(input.id) + "']") : null;
    var anchor = input;

    if (legend && input.getBoundingClientRect().top - legend.getBoundingClientRect().top <
        window.innerHeight / 2) {
      anchor = legend;
    } else if (label) {
      anchor = label;
    }
    if (anchor.scrollIntoView) {
      anchor.scrollIntoView();
    }
    try {
      input.focus({ preventScroll: true });
    } catch (e) {
      input.focus();
    }
  }

  /* ------------------------------------------------------------------ */
  /* b) Conditional questions                                           */
  /* ------------------------------------------------------------------ */

  /*
   * Hook for richer conditions. Rust renders elements like
   *   <div data-show-if='{"question":"q12","in":["yes"]}'>...</div>
   * Override window.dma.showIf = function (condition, form) { ... } to
   * return true (show), false (hide) or undefined (leave alone). The default
   * leaves the element exactly as the server rendered it; the server always
   * evaluates the full conditions when the form is submitted.
   */
  if (typeof dma.showIf !== "function") {
    dma.showIf = function () {
      return undefined;
    };
  }

  // Values currently chosen for a named control inside `scope`.
  function chosenValues(scope, name) {
    var values = [];
    $all("[name='" + cssEscape(name) + "']", scope).forEach(function (el) {
      var tag = el.tagName.toLowerCase();
      var type = (el.getAttribute("type") || "").toLowerCase();
      if (el.disabled) {
        return;
      }
      if (type === "radio" || type === "checkbox") {
        if (el.checked) {
          values.push(el.value);
        }
      } else if (tag === "select") {
        toArray(el.options).forEach(function (opt) {
          if (opt.selected) {
            values.push(opt.value);
          }
        });
      } else if (type !== "hidden") {
        // Text-like inputs: compare their value too (handy for numbers).
        if (el.value !== "") {
          values.push(el.value);
        }
      }
    });
    return values;
  }

  function setVisible(el, visible) {
    if (visible) {
      el.removeAttribute("hidden");
    } else {
      el.setAttribute("hidden", "");
    }
    el.setAttribute("data-dma-visible", visible ? "true" : "false");
  }

  function scopeFor(el) {
    return el.closest("form") || document;
  }

  function evaluateConditionals(root) {
    $all("[data-dma-conditional]", root).forEach(function (el) {
      var controller = el.getAttribute("data-controller");
      if (!controller) {
        return;
      }
      var wanted = (el.getAttribute("data-values") || "")
        .split(",")
        .map(function (v) { return v.trim(); })
        .filter(function (v) { return v !== ""; });
      var chosen = chosenValues(scopeFor(el), controller);
      var show = chosen.some(function (v) { return wanted.indexOf(v) !== -1; });
      setVisible(el, show);
    });

    $all("[data-show-if]", root).forEach(function (el) {
      var condition;
      try {
        condition = JSON.parse(el.getAttribute("data-show-if"));
      } catch (e) {
        return;
      }
      var result = dma.showIf(condition, scopeFor(el), el);
      if (result === true || result === false) {
        setVisible(el, result);
      }
    });
  }

  function initConditionals(root) {
    var scope = root || document;
    var blocks = $all("[data-dma-conditional], [data-show-if]", scope);
    if (!blocks.length) {
      return;
    }
    // Tell assistive technology which block each controlling input affects.
    $all("[data-dma-conditional][id]", scope).forEach(function (el) {
      var name = el.getAttribute("data-controller");
      if (!name) {
        return;
      }
      $all("[name='" + cssEscape(name) + "']", scopeFor(el)).forEach(function (input) {
        var existing = (input.getAttribute("aria-controls") || "").split(" ").filter(Boolean);
        if (existing.indexOf(el.id) === -1) {
          existing.push(el.id);
          input.setAttribute("aria-controls", existing.join(" "));
        }
      });
    });
    evaluateConditionals(scope);
    if (!scope.__dmaConditionalsBound) {
      scope.__dmaConditionalsBound = true;
      var handler = function () {
        evaluateConditionals(scope);
      };
      scope.addEventListener("change", handler);
      scope.addEventListener("input", handler);
    }
  }

  dma.initConditionals = initConditionals;
  dma.evaluateConditionals = evaluateConditionals;

  /* ------------------------------------------------------------------ */
  /* c) Autosave                                                        */
  /* ------------------------------------------------------------------ */

  var AUTOSAVE_DELAY_MS = 800;

  function findCsrfToken(form) {
    var field = form.querySelector("input[name='csrf_token']") ||
      document.querySelector("input[name='csrf_token']");
    if (field) {
      return field.value;
    }
    var meta = document.querySelector("meta[name='csrf-token']");
    return meta ? meta.getAttribute("content") : null;
  }

  function readJson(response) {
    var type = response.headers.get("Content-Type") || "";
    if (type.indexOf("json") === -1) {
      return Promise.resolve({});
    }
    return response.json().catch(function () {
      return {};
    });
  }

  function initAutosaveForm(form) {
    var url = form.getAttribute("data-autosave-url");
    if (!url || form.__dmaAutosave) {
      return;
    }
    var statusEl = form.querySelector("[data-autosave-status]") ||
      document.querySelector("[data-autosave-status]");
    var timer = null;
    var inFlight = false;
    var pending = false;
    var stopped = false; // after a 409 conflict: stop overwriting
    var dirty = false;

    if (statusEl) {
      if (!statusEl.hasAttribute("role")) {
        statusEl.setAttribute("role", "status");
      }
      if (!statusEl.hasAttribute("aria-live")) {
        statusEl.setAttribute("aria-live", "polite");
      }
    }

    function setStatus(state, text) {
      form.setAttribute("data-autosave-state", state);
      if (!statusEl) {
        return;
      }
      statusEl.setAttribute("data-state", state);
      statusEl.textContent = text;
    }

    function save() {
      timer = null;
      if (stopped) {
        return Promise.resolve();
      }
      if (inFlight) {
        pending = true;
        return Promise.resolve();
      }
      inFlight = true;
      dirty = false;
      setStatus("saving", "Saving\u2026");

      var data = new FormData(form);
      var token = findCsrfToken(form);
      if (token && !data.has("csrf_token")) {
        data.append("csrf_token", token);
      }
      // Sent url-encoded (not multipart) so the server can read it with an
      // ordinary form extractor. Files are never autosaved.
      var body = new URLSearchParams();
      data.forEach(function (value, key) {
        if (typeof value === "string") {
          body.append(key, value);
        }
      });

      var headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
        "X-Requested-With": "fetch"
      };
      if (token) {
        headers["X-CSRF-Token"] = token;
      }

      return fetch(url, {
        method: "POST",
        body: body.toString(),
        headers: headers,
        credentials: "same-origin",
        cache: "no-store"
      }).then(function (response) {
        return readJson(response).then(function (json) {
          if (json && Array.isArray(json.visible)) {
            applyVisibility(form, json);
          }
          var isJson = (response.headers.get("Content-Type") || "").indexOf("json") !== -1;
          if (response.ok && (response.redirected || !isJson)) {
            // Followed a redirect (to the sign-in page): nothing was saved.
            stopped = true;
            setStatus("error", "Not saved: you have been signed out. Sign in again in another tab, then come back and save.");
          } else if (response.ok) {
            var now = new Date();
            setStatus("saved", "Saved at " + pad2(now.getHours()) + ":" + pad2(now.getMinutes()));
            form.dispatchEvent(new CustomEvent("dma:autosaved", { detail: json }));
          } else if (response.status === 409) {
            stopped = true;
            setStatus("conflict", (json && json.message) ||
              "This answer was changed by someone else. Reload the page to see the latest version.");
            form.dispatchEvent(new CustomEvent("dma:autosave-conflict", { detail: json }));
          } else {
            var message = (json && (json.error || json.message)) ||
              ("the server responded " + response.status);
            setStatus("error", "Not saved: " + message);
            if (response.status === 401 || response.status === 403) {
              stopped = true; // signed out or forbidden; retrying will not help
            }
          }
        });
      }).catch(function () {
        setStatus("error", "Not saved: check your internet connection. Your answers will be saved when you continue.");
        dirty = true;
      }).then(function () {
        inFlight = false;
        if (pending && !stopped) {
          pending = false;
          schedule();
        }
      });
    }

    function schedule() {
      if (stopped) {
        return;
      }
      dirty = true;
      if (timer) {
        window.clearTimeout(timer);
      }
      timer = window.setTimeout(save, AUTOSAVE_DELAY_MS);
    }

    form.__dmaAutosave = {
      saveNow: function () {
        if (timer) {
          window.clearTimeout(timer);
        }
        return save();
      },
      isDirty: function () {
        return dirty;
      }
    };

    // A choice (radio button or tick box) is saved at once, so a follow-up question it
    // reveals appears straight away; typing is saved after a pause.
    function isChoice(target) {
      var type = target && target.getAttribute ? (target.getAttribute("type") || "").toLowerCase() : "";
      return type === "radio" || type === "checkbox";
    }
    // Fields drawn inside the form that belong to another (evidence, by their `form`
    // attribute) are not answers: typing in them saves nothing.
    function isOwnField(target) {
      return !target || !("form" in target) || target.form === form;
    }
    form.addEventListener("input", function (event) {
      if (isOwnField(event.target) && !isChoice(event.target)) {
        schedule();
      }
    });
    form.addEventListener("change", function (event) {
      if (!isOwnField(event.target)) {
        return;
      }
      if (!isChoice(event.target)) {
        schedule();
        return;
      }
      if (stopped) {
        return;
      }
      dirty = true;
      if (timer) {
        window.clearTimeout(timer);
      }
      save();
    });
    // A normal submit saves everything; cancel the pending autosave.
    form.addEventListener("submit", function () {
      if (timer) {
        window.clearTimeout(timer);
        timer = null;
      }
      stopped = true;
    });
  }

  /*
   * Show and hide questions as the server decided ({visible: [keys]} in the autosave
   * response, worked out by the same rules as a saved form), and update the section's
   * answered count. A hidden question's present/rev fields are disabled so it is not
   * posted; a question that appears or disappears is announced to screen readers.
   */
  function applyVisibility(form, json) {
    var shown = {};
    json.visible.forEach(function (key) {
      shown[key] = true;
    });
    var appeared = [];
    var gone = [];
    $all("[data-question]", form).forEach(function (block) {
      var key = block.getAttribute("data-question");
      var visible = shown[key] === true;
      var wasVisible = !block.hasAttribute("hidden");
      if (visible === wasVisible) {
        return;
      }
      if (visible) {
        block.removeAttribute("hidden");
        appeared.push(block.getAttribute("data-question-text") || key);
      } else {
        block.setAttribute("hidden", "");
        gone.push(block.getAttribute("data-question-text") || key);
      }
      $all("input[name='present." + cssEscape(key) + "'], input[name='rev." + cssEscape(key) + "']", block)
        .forEach(function (input) {
          input.disabled = !visible;
        });
    });
    var live = form.querySelector("[data-reveal-status]");
    if (live && (appeared.length || gone.length)) {
      var parts = [];
      if (appeared.length) {
        parts.push((appeared.length === 1 ? "A new question is shown: " : "New questions are shown: ") +
          appeared.join("; "));
      }
      if (gone.length) {
        parts.push((gone.length === 1 ? "A question no longer applies: " : "Questions no longer apply: ") +
          gone.join("; "));
      }
      live.textContent = parts.join(". ") + ".";
    }
    var progress = json.progress || {};
    $all("[data-progress]").forEach(function (box) {
      var counts = progress[box.getAttribute("data-progress")];
      if (!counts) {
        return;
      }
      var label = box.querySelector("[data-progress-label]");
      var bar = box.querySelector("progress");
      var text = counts.answered + " of " + counts.visible;
      if (label) {
        label.textContent = text + " answered in this section";
      }
      if (bar) {
        bar.max = counts.visible || 1;
        bar.value = counts.answered;
        bar.textContent = text;
      }
    });
  }

  dma.applyVisibility = applyVisibility;

  function initAutosave(root) {
    $all("form[data-autosave-url]", root).forEach(initAutosaveForm);
  }

  dma.autosave = {
    init: initAutosave,
    saveNow: function (form) {
      return form && form.__dmaAutosave ? form.__dmaAutosave.saveNow() : Promise.resolve();
    }
  };

  /* ------------------------------------------------------------------ */
  /* Character count: textarea[data-maxlength] and its [data-character-count] */
  /* ------------------------------------------------------------------ */

  function initCharacterCounts(root) {
    $all("textarea[data-maxlength]", root).forEach(function (area) {
      var max = parseInt(area.getAttribute("data-maxlength"), 10);
      var id = (area.getAttribute("aria-describedby") || "").split(" ")[0];
      var message = id ? document.getElementById(id) : null;
      if (!max || !message || area.__dmaCount) {
        return;
      }
      area.__dmaCount = true;
      var timer = null;
      function update() {
        timer = null;
        var left = max - area.value.length;
        var over = left < 0;
        message.textContent = over ?
          "You have " + (-left) + (left === -1 ? " character" : " characters") + " too many" :
          "You have " + left + (left === 1 ? " character" : " characters") + " remaining";
        message.classList.toggle("dma-error-message", over);
        area.classList.toggle("dma-textarea--error", over);
      }
      area.addEventListener("input", function () {
        if (timer) {
          window.clearTimeout(timer);
        }
        timer = window.setTimeout(update, 300);
      });
      update();
    });
  }

  /* ------------------------------------------------------------------ */
  /* d) Sortable tables                                                 */
  /* ------------------------------------------------------------------ */

  var collator = window.Intl && Intl.Collator ?
    new Intl.Collator("en-GB", { numeric: true, sensitivity: "base" }) : null;

  function cellSortValue(cell) {
    if (!cell) {
      return "";
    }
    var v = cell.getAttribute("data-sort-value");
    return v !== null ? v : cell.textContent.trim();
  }

  function asNumber(text) {
    var cleaned = String(text).replace(/[,\u00a3%\s]/g, "");
    if (cleaned === "" || !/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(cleaned)) {
      return null;
    }
    return parseFloat(cleaned);
  }

  function compareValues(a, b) {
    var na = asNumber(a);
    var nb = asNumber(b);
    if (na !== null && nb !== null) {
      return na - nb;
    }
    // Blank values sort last in ascending order.
    if (a === "" && b !== "") {
      return 1;
    }
    if (b === "" && a !== "") {
      return -1;
    }
    return collator ? collator.compare(a, b) : (a < b ? -1 : a > b ? 1 : 0);
  }

  function sortTable(table, columnIndex, direction) {
    var headers = headerCells(table);
    headers.forEach(function (th, i) {
      if (th.getAttribute("data-sort") === "none") {
        return;
      }
      th.setAttribute("aria-sort", i === columnIndex ? direction : "none");
    });
    var factor = direction === "descending" ? -1 : 1;
    toArray(table.tBodies).forEach(function (tbody) {
      var rows = toArray(tbody.rows).map(function (row, i) {
        return { row: row, index: i, value: cellSortValue(row.cells[columnIndex]) };
      });
      rows.sort(function (x, y) {
        var c = compareValues(x.value, y.value) * factor;
        return c !== 0 ? c : x.index - y.index; // stable
      });
      var fragment = document.createDocumentFragment();
      rows.forEach(function (r) {
        fragment.appendChild(r.row);
      });
      tbody.appendChild(fragment);
    });
    var status = table.__dmaSortStatus;
    if (status && headers[columnIndex]) {
      status.textContent = "Sorted by " + headers[columnIndex].textContent.trim() +
        ", " + direction;
    }
  }

  function headerCells(table) {
    var head = table.tHead;
    if (!head || !head.rows.length) {
      return [];
    }
    return toArray(head.rows[head.rows.length - 1].cells);
  }

  function initSortableTable(table) {
    if (table.__dmaSortable) {
      return;
    }
    table.__dmaSortable = true;
    var headers = headerCells(table);
    if (!headers.length) {
      return;
    }

    var status = document.createElement("div");
    status.className = "dma-u-visually-hidden";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    table.parentNode.insertBefore(status, table.nextSibling);
    table.__dmaSortStatus = status;

    headers.forEach(function (th, index) {
      if (th.getAttribute("data-sort") === "none" || th.colSpan > 1) {
        return;
      }
      var button = th.querySelector(".dma-table__sort-button");
      if (!button) {
        button = document.createElement("button");
        button.type = "button";
        button.className = "dma-table__sort-button";
        while (th.firstChild) {
          button.appendChild(th.firstChild);
        }
        th.appendChild(button);
      }
      if (!th.hasAttribute("aria-sort")) {
        th.setAttribute("aria-sort", "none");
      }
      button.addEventListener("click", function () {
        var current = th.getAttribute("aria-sort");
        var next = current === "ascending" ? "descending" : "ascending";
        sortTable(table, index, next);
      });
    });
  }

  function initSortableTables(root) {
    $all("table[data-sortable]", root).forEach(initSortableTable);
  }

  dma.sortTable = sortTable;

  /* ------------------------------------------------------------------ */
  /* e) Print: open every <details> so its content is printed           */
  /* ------------------------------------------------------------------ */

  function initPrint() {
    var opened = [];
    window.addEventListener("beforeprint", function () {
      opened = $all("details:not([open])");
      opened.forEach(function (d) {
        d.setAttribute("open", "");
      });
    });
    window.addEventListener("afterprint", function () {
      opened.forEach(function (d) {
        d.removeAttribute("open");
      });
      opened = [];
    });
  }

  /* ------------------------------------------------------------------ */
  /* Start                                                              */
  /* ------------------------------------------------------------------ */

  function safely(fn, root) {
    try {
      fn(root);
    } catch (e) {
      if (window.console && console.error) {
        console.error("dma.js:", e);
      }
    }
  }

  dma.init = function (root) {
    var scope = root || document;
    if (scope === document) {
      safely(initErrorSummary);
      safely(initPrint);
    }
    safely(initConditionals, scope);
    safely(initAutosave, scope);
    safely(initSortableTables, scope);
    safely(initCharacterCounts, scope);
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      dma.init(document);
    });
  } else {
    dma.init(document);
  }
})();

/* Autosave keeps each answer's revision current, so the next save of the same page is not
   mistaken for a stale edit. (The server answers with {revisions: {key: n}}.) */
document.addEventListener("dma:autosaved", function (event) {
  var revisions = event.detail && event.detail.revisions;
  if (!revisions || !event.target || !event.target.querySelector) { return; }
  Object.keys(revisions).forEach(function (key) {
    var input = event.target.querySelector('input[name="rev.' + key + '"]');
    if (input) { input.value = revisions[key]; }
  });
}, true);
