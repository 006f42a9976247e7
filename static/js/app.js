// Catalog Explorer: small progressive enhancements. Every page works without this file:
// menus are <details>, dialogs fall back to ?confirm=delete, forms post normally.
(function () {
  "use strict";

  function openDialog(dialog) {
    if (!dialog || typeof dialog.showModal !== "function") return false;
    if (dialog.open) dialog.close();
    dialog.showModal();
    var input = dialog.querySelector("input[type=text]");
    if (input) input.focus();
    syncConfirm(dialog.querySelector("[data-confirm-form]"));
    return true;
  }

  function syncConfirm(form) {
    if (!form) return;
    var input = form.querySelector("[data-expected]");
    var button = form.querySelector("[data-confirm-submit]");
    if (input && button) button.disabled = input.value.trim() !== input.getAttribute("data-expected");
  }

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open], details.popover[open]").forEach(function (d) {
      if (d !== except && !d.contains(except)) d.removeAttribute("open");
    });
  }

  function init(root) {
    root.querySelectorAll("dialog[data-auto-open]").forEach(function (dialog) {
      dialog.removeAttribute("data-auto-open");
      openDialog(dialog);
    });
    root.querySelectorAll("[data-confirm-form]").forEach(syncConfirm);
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog-open"));
      if (openDialog(dialog)) {
        event.preventDefault();
        closeMenus(null);
      }
      return;
    }
    var closer = event.target.closest("[data-dialog-close]");
    if (closer) {
      var parent = closer.closest("dialog");
      if (parent) {
        event.preventDefault();
        parent.close();
      }
      return;
    }
    var inside = event.target.closest("details.menu, details.popover");
    closeMenus(inside);
  });

  document.addEventListener("input", function (event) {
    var form = event.target.closest("[data-confirm-form]");
    if (form) syncConfirm(form);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.menu[open], details.popover[open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  // Opening one menu closes the others.
  document.addEventListener("toggle", function (event) {
    var d = event.target;
    if (d.matches && d.matches("details.menu, details.popover") && d.open) {
      closeMenus(d);
      // A form sent back with errors opens on its first invalid field, else on its first field.
      // The toggle event comes a moment after the popover opened: focus already in one of its
      // fields (someone quick, a password manager) is where the user went, and stays there.
      var first = d.querySelector("[aria-invalid=true]") ||
        d.querySelector("input:not([type=hidden]), textarea, select");
      var active = document.activeElement;
      var chosen = active && d.contains(active) && !active.matches("summary");
      if (first && d.classList.contains("popover") && !chosen) first.focus();
    }
  }, true);

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();

// On a phone the catalog tree starts collapsed above the content.
document.addEventListener("DOMContentLoaded", function () {
  if (window.matchMedia && window.matchMedia("(max-width: 860px)").matches) {
    var toggle = document.querySelector(".sidebar-toggle");
    if (toggle) toggle.removeAttribute("open");
  }
});

// The MLflow client prints links into MLflow's own UI ("View run at http://host/#/experiments/1/
// runs/<id>", "#/models/<name>/versions/<v>"): on our home page, follow them to our pages.
(function () {
  function follow() {
    if (window.location.pathname !== "/") return;
    var hash = window.location.hash, m, part = encodeURIComponent;
    if ((m = /^#\/experiments\/(\d+)(?:\/runs\/([0-9a-f]+))?\/?$/.exec(hash))) {
      window.location.replace("/experiments/" + m[1] + "/" + (m[2] ? "runs/" + m[2] + "/" : ""));
    } else if ((m = /^#\/models\/([^/.]+)\.([^/.]+)\.([^/.]+)(?:\/versions\/(\d+))?\/?$/.exec(hash))) {
      window.location.replace("/explore/" + [m[1], m[2], m[3]].map(function (p) {
        return part(decodeURIComponent(p));
      }).join("/") + "/" + (m[4] ? "versions/" + m[4] + "/" : ""));
    }
  }
  follow();
  window.addEventListener("hashchange", follow);
})();
