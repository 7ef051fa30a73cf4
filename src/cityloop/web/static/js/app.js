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
    if (el.dataset.choropleth) setupChoropleth(el, map, L);
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

  // --- cells shaded by open cases (the dashboard) ------------------------------------------
  // The server answers the district's busiest cells, or every busy cell of a zoomed-in view,
  // with "breaks" (lower bounds of the classes); the colours run from pale to dark red.
  var PALETTE = ["#fcae91", "#fb6a4a", "#de2d26", "#a50f15", "#67000d"];

  function classOf(breaks, n) {
    var k = 0;
    for (var i = 0; i < breaks.length; i++) if (n >= breaks[i]) k = i;
    return k;
  }

  function colourOf(breaks, k) {
    if (breaks.length <= 1) return PALETTE[3];
    return PALETTE[Math.round(k * (PALETTE.length - 1) / (breaks.length - 1))];
  }

  function setupChoropleth(el, map, L) {
    var breaks = [1];
    var layer = L.geoJSON(null, {
      style: function (f) {
        var n = (f.properties && f.properties.open) || 0;
        var colour = colourOf(breaks, classOf(breaks, n));
        // Zoomed out, a 100 m cell is a pixel: a thick outline in its own colour keeps it seen.
        var far = map.getZoom() < 14;
        return {
          color: far ? colour : "#7f0000", weight: far ? 4 : 0.6, opacity: far ? 0.95 : 0.7,
          fillColor: colour, fillOpacity: 0.8,
        };
      },
      onEachFeature: function (f, lyr) {
        var div = document.createElement("div");
        [["msg-cell", f.properties.code], ["msg-open", String(f.properties.open)]].forEach(
          function (pair) {
            var line = document.createElement("div");
            var name = document.createElement("strong");
            name.textContent = (el.getAttribute("data-" + pair[0]) || "") + ": ";
            line.appendChild(name);
            line.appendChild(document.createTextNode(pair[1]));
            div.appendChild(line);
          }
        );
        lyr.bindTooltip(div, { sticky: true });
      },
    }).addTo(map);
    var legendBox = null;
    var legend = L.control({ position: "bottomright" });
    legend.onAdd = function () {
      legendBox = L.DomUtil.create("div", "map-legend");
      return legendBox;
    };
    legend.addTo(map);
    function drawLegend() {
      if (!legendBox) return;
      legendBox.textContent = "";
      var title = document.createElement("strong");
      title.textContent = el.dataset.msgLegend || "";
      legendBox.appendChild(title);
      breaks.forEach(function (lo, i) {
        var row = document.createElement("div");
        var swatch = document.createElement("span");
        swatch.className = "legend-swatch legend-" + Math.round(
          breaks.length <= 1 ? 3 : i * (PALETTE.length - 1) / (breaks.length - 1)
        );
        var hi = i + 1 < breaks.length ? breaks[i + 1] - 1 : null;
        row.appendChild(swatch);
        row.appendChild(document.createTextNode(
          hi === null ? lo + "+" : (hi === lo ? String(lo) : lo + "\u2013" + hi)
        ));
        legendBox.appendChild(row);
      });
    }
    var seq = 0;
    function load() {
      map.invalidateSize();
      var url = el.dataset.choropleth;
      var zoomed = map.getZoom() >= 14;
      if (zoomed) {
        var b = map.getBounds();
        url += "?bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(
          function (v) { return v.toFixed(5); }
        ).join(",");
      }
      var mine = ++seq;
      fetchJson(url).then(function (fc) {
        if (mine !== seq) return; // a later view's answer wins
        breaks = fc.breaks && fc.breaks.length ? fc.breaks : [1];
        layer.clearLayers();
        // Busiest last, so they are drawn on top.
        layer.addData({ type: "FeatureCollection", features: (fc.features || []).slice().reverse() });
        drawLegend();
        var note = el.parentNode && el.parentNode.querySelector("[data-map-note]");
        if (note) note.textContent = zoomed ? el.dataset.msgView : el.dataset.msgHotspots;
      }).catch(function () {});
    }
    map.on("moveend", load);
    el.cityloopReload = load;
    load();
  }

  // The dashboard swaps fresh figures in (htmx); the preserved map then reloads its cells.
  function setupDashboardRefresh() {
    document.body.addEventListener("htmx:afterSettle", function () {
      document.querySelectorAll("[data-choropleth]").forEach(function (el) {
        if (el.cityloopReload) el.cityloopReload();
      });
    });
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
    setupDashboardRefresh();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
