// cityloop pages: small progressive enhancements. Every page works without this file;
// it adds the maps, the class search, the photo-count check and the geolocation button.
// No inline scripts (the Content-Security-Policy forbids them) and no strings of its own:
// the texts come from data-msg-* attributes the server rendered in the user's language.
(function () {
  "use strict";

  // --- class search on the report form ---------------------------------------------------
  function setupClassSearch() {
    var box = document.querySelector("[data-class-search]");
    if (!box) return;
    var empty = document.querySelector("[data-class-search-empty]");
    box.addEventListener("input", function () {
      var q = box.value.trim().toLowerCase();
      var shown = 0;
      document.querySelectorAll("[data-class-group]").forEach(function (group) {
        var groupName = (group.querySelector(".group-name") || {}).textContent || "";
        var groupHit = q && groupName.toLowerCase().indexOf(q) >= 0;
        var any = false;
        group.querySelectorAll("[data-class-option]").forEach(function (opt) {
          var hit = !q || groupHit || opt.getAttribute("data-search").toLowerCase().indexOf(q) >= 0;
          opt.hidden = !hit;
          if (hit) any = true;
        });
        group.hidden = !any;
        if (any) shown += 1;
        group.open = Boolean(q) && any;
      });
      if (empty) empty.hidden = shown > 0;
    });
    // Choosing a class closes the other groups so the page stays short on a phone.
    document.querySelectorAll("[data-class-option] input").forEach(function (input) {
      input.addEventListener("change", function () {
        document.querySelectorAll("[data-class-group]").forEach(function (group) {
          if (!group.contains(input)) group.open = false;
        });
      });
    });
  }

  // --- at most N photos --------------------------------------------------------------------
  function setupFileLimits() {
    document.querySelectorAll("input[type=file][data-max-files]").forEach(function (input) {
      var max = parseInt(input.getAttribute("data-max-files"), 10);
      input.addEventListener("change", function () {
        if (input.files && input.files.length > max) {
          input.setCustomValidity(input.getAttribute("data-msg-too-many") || "");
          input.reportValidity();
          input.value = "";
        } else {
          input.setCustomValidity("");
        }
      });
    });
  }

  // --- maps --------------------------------------------------------------------------------
  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  function popupNode(el, props) {
    var div = document.createElement("div");
    [["msg-class", props["class"]], ["msg-status", props.status], ["msg-day", props.day]].forEach(
      function (pair) {
        if (!pair[1]) return;
        var line = document.createElement("div");
        var name = document.createElement("strong");
        name.textContent = (el.getAttribute("data-" + pair[0]) || "") + ": ";
        line.appendChild(name);
        line.appendChild(document.createTextNode(pair[1]));
        div.appendChild(line);
      }
    );
    return div;
  }

  function setupMap(el) {
    if (!window.L) return;
    var L = window.L;
    var map = L.map(el, {
      zoomControl: true, zoomSnap: 0.25, attributionControl: Boolean(el.dataset.tileUrl),
    });
    map.setView([39.96, 116.3], 11);
    if (el.dataset.tileUrl) {
      L.tileLayer(el.dataset.tileUrl, {
        maxZoom: parseInt(el.dataset.tileMaxZoom || "18", 10),
        attribution: el.dataset.tileAttribution || "",
      }).addTo(map);
      el.classList.add("has-tiles");
    }
    var marker = null;
    function setPoint(lat, lon, zoom) {
      var latlng = L.latLng(lat, lon);
      if (marker) marker.setLatLng(latlng);
      else
        marker = L.circleMarker(latlng, {
          radius: 9, color: "#b71c1c", weight: 3, fillColor: "#e53935", fillOpacity: 0.9,
        }).addTo(map);
      if (zoom) map.setView(latlng, Math.max(map.getZoom(), zoom));
    }
    var point = el.dataset.point;
    var fitted = false;
    if (point) {
      var p = point.split(",").map(Number);
      if (isFinite(p[0]) && isFinite(p[1])) {
        setPoint(p[1], p[0]);
        map.setView([p[1], p[0]], 16); // close enough to draw the grid cells
        fitted = true;
      }
    }
    if (el.dataset.boundary) {
      fetchJson(el.dataset.boundary).then(function (feature) {
        var outline = L.geoJSON(feature, {
          interactive: false,
          style: { color: "#1d4e89", weight: 2, fillColor: "#dbe7f5", fillOpacity: 0.35 },
        }).addTo(map);
        outline.bringToBack();
        if (!fitted) map.fitBounds(outline.getBounds(), { padding: [10, 10] });
      }).catch(function () {});
    }
    if (el.dataset.cases) {
      fetchJson(el.dataset.cases).then(function (fc) {
        L.geoJSON(fc, {
          pointToLayer: function (f, latlng) {
            var closed = f.properties && f.properties.closed;
            return L.circleMarker(latlng, {
              radius: 5, weight: 1, color: closed ? "#2e7d32" : "#c62828",
              fillColor: closed ? "#66bb6a" : "#ef5350", fillOpacity: 0.8,
            });
          },
          onEachFeature: function (f, layer) {
            layer.bindPopup(popupNode(el, f.properties || {}));
          },
        }).addTo(map);
      }).catch(function () {});
    }
    if (el.dataset.cells) {
      // Cells are drawn only when zoomed in: a district has tens of thousands of them.
      var cells = L.geoJSON(null, {
        interactive: false,
        style: { color: "#5c6bc0", weight: 0.6, fill: false },
      }).addTo(map);
      var loadCells = function () {
        cells.clearLayers();
        if (map.getZoom() < 15) return;
        var b = map.getBounds();
        var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
          return v.toFixed(5);
        }).join(",");
        fetchJson(el.dataset.cells + "?bbox=" + bbox).then(function (fc) {
          cells.addData(fc);
        }).catch(function () {});
      };
      map.on("moveend", loadCells);
      map.whenReady(loadCells); // the first view is set before this handler exists
    }
    if (el.dataset.pick) {
      var lon = document.getElementById("lon");
      var lat = document.getElementById("lat");
      var text = document.querySelector("[data-picked-text]");
      var pick = function (la, lo, zoom) {
        lon.value = lo.toFixed(6);
        lat.value = la.toFixed(6);
        setPoint(la, lo, zoom);
        if (text) text.textContent = (el.dataset.msgPicked || "") + ": " + lon.value + ", " + lat.value;
      };
      map.on("click", function (e) { pick(e.latlng.lat, e.latlng.lng); });
      var geo = document.querySelector("[data-geolocate]");
      if (geo) {
        geo.addEventListener("click", function () {
          if (!navigator.geolocation) {
            if (text) text.textContent = geo.getAttribute("data-msg-error");
            return;
          }
          if (text) text.textContent = geo.getAttribute("data-msg-busy");
          // The W3C Geolocation API reports WGS-84, which is what the form sends.
          navigator.geolocation.getCurrentPosition(
            function (pos) { pick(pos.coords.latitude, pos.coords.longitude, 16); },
            function () { if (text) text.textContent = geo.getAttribute("data-msg-error"); },
            { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
          );
        });
      }
    }
    // A map inside a closed <details> or a resized layout needs to re-measure itself.
    setTimeout(function () { map.invalidateSize(); }, 200);
    el.cityloopMap = map;
  }

  function setupMaps() {
    document.querySelectorAll("[data-map]").forEach(setupMap);
  }

  // --- confirmations for actions that end work ----------------------------------------------
  function setupConfirm() {
    document.querySelectorAll("form [data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (e) {
        if (!window.confirm(button.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
  }

  function start() {
    setupClassSearch();
    setupFileLimits();
    setupMaps();
    setupConfirm();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
