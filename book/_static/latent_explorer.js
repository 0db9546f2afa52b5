/* The latent-space explorer of the book: a trained decoder, run in the page, over its 2-D latent plane.
 *
 * book/_ext/latent_explorer.py writes each figure as <div class="latent-explorer" data-decoder="NAME">,
 * followed by a script that puts the decoder's export (vae_lib/export.py) in window.vaeBookDecoders[NAME].
 * This file builds the figure in that div: the plane of encoded points on the left, the decoded image of
 * the point under the pointer on the right, and, in the second mode, two strips of images decoded along
 * the straight and the spherical path between two chosen points.
 *
 * The forward pass reads the float32 weights into float64 numbers and computes in float64, as the build's
 * reference outputs are computed; window.vaeBookLatentExplorer.decode(name, z) exposes it to tests.
 */
"use strict";

(function () {
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const FORMAT = "vae-book/decoder-export/1";
  const STEPS = 10;          // images per interpolation strip
  const NEIGHBOURS = 10;     // test digits named in the status line
  const STATUS_EVERY_MS = 250;
  const ACTIVATIONS = {
    relu: (x) => (x > 0 ? x : 0),
    tanh: Math.tanh,
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    identity: (x) => x,
  };

  // The export's arrays are little-endian bytes in base64 (vae_lib/export.py); float32 become float64.
  function numbers(base64, size, read) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    const values = new Float64Array(bytes.length / size);
    for (let i = 0; i < values.length; i++) values[i] = read.call(view, size * i, true);
    return values;
  }
  const float32s = (base64) => numbers(base64, 4, DataView.prototype.getFloat32);
  const int32s = (base64) => numbers(base64, 4, DataView.prototype.getInt32);

  function makeDecoder(payload) {
    if (payload.format !== FORMAT) throw new Error(`decoder export of format ${payload.format}, expected ${FORMAT}`);
    const layers = payload.layers.map((layer) => {
      const activation = ACTIVATIONS[layer.activation];
      if (!activation) throw new Error(`unknown activation ${layer.activation}`);
      return { inputs: layer.inputs, outputs: layer.outputs, activation,
               weight: float32s(layer.weight), bias: float32s(layer.bias) };
    });
    return function decode(z) {
      let x = Float64Array.from(z);
      for (const layer of layers) {
        const y = new Float64Array(layer.outputs);
        for (let o = 0; o < layer.outputs; o++) {
          const row = o * layer.inputs;
          let sum = layer.bias[o];
          for (let i = 0; i < layer.inputs; i++) sum += layer.weight[row + i] * x[i];
          y[o] = layer.activation(sum);
        }
        x = y;
      }
      return x;
    };
  }

  const decoders = {};
  function decoderFor(name) {
    if (!decoders[name]) {
      const payload = (window.vaeBookDecoders || {})[name];
      if (!payload) throw new Error(`no decoder export named ${name} on this page`);
      decoders[name] = makeDecoder(payload);
    }
    return decoders[name];
  }

  function straight(a, b, t) {
    return [(1 - t) * a[0] + t * b[0], (1 - t) * a[1] + t * b[1]];
  }

  // Spherical interpolation in the plane: the direction turns at a constant rate along the shorter arc
  // (slerp of the unit directions) while the distance from the origin changes linearly between the ends'.
  function spherical(a, b, t) {
    const ra = Math.hypot(a[0], a[1]), rb = Math.hypot(b[0], b[1]);
    const ta = ra > 0 ? Math.atan2(a[1], a[0]) : Math.atan2(b[1], b[0]);
    const tb = rb > 0 ? Math.atan2(b[1], b[0]) : ta;
    let turn = tb - ta;
    if (turn > Math.PI) turn -= 2 * Math.PI;
    if (turn <= -Math.PI) turn += 2 * Math.PI;
    const r = (1 - t) * ra + t * rb, angle = ta + t * turn;
    return [r * Math.cos(angle), r * Math.sin(angle)];
  }

  function element(tag, attributes, parent, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // Paint images (arrays of pixel means in [0, 1]) side by side on a canvas of their own pixel size:
  // dark ink on white, as the book's matplotlib figures (grey_r); CSS scales it up without smoothing.
  function paintImages(canvas, images, shape) {
    const [rows, columns] = shape;
    canvas.width = columns * images.length;
    canvas.height = rows;
    const context = canvas.getContext("2d");
    const pixels = context.createImageData(canvas.width, canvas.height);
    images.forEach((image, k) => {
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < columns; c++) {
          const value = Math.min(1, Math.max(0, image[r * columns + c]));
          const grey = Math.round(255 * (1 - value));
          const at = 4 * (r * canvas.width + k * columns + c);
          pixels.data[at] = pixels.data[at + 1] = pixels.data[at + 2] = grey;
          pixels.data[at + 3] = 255;
        }
      }
    });
    context.putImageData(pixels, 0, 0);
  }

  function format(value) {
    return (value < 0 ? "\u2212" : "") + Math.abs(value).toFixed(2);
  }

  class Explorer {
    constructor(root) {
      this.root = root;
      this.name = root.dataset.decoder;
      this.payload = window.vaeBookDecoders[this.name];
      this.decode = decoderFor(this.name);
      const z = float32s(this.payload.points.z);
      this.points = Array.from({ length: this.payload.points.count }, (_, i) => [z[2 * i], z[2 * i + 1]]);
      this.labels = Array.from(int32s(this.payload.points.labels));
      const largest = Math.max(3, ...this.points.map((z) => Math.max(Math.abs(z[0]), Math.abs(z[1]))));
      this.extent = Math.ceil(largest * 1.05 * 2) / 2;  // a square [-extent, extent]^2 holding every point
      this.mode = "decode";
      this.cursor = [0, 0];
      this.ends = [];
      this.build();
      this.resize();
      new ResizeObserver(() => this.resize()).observe(this.planeBox);
      this.show(this.cursor, true);
      root.dataset.ready = "true";
    }

    build() {
      const root = this.root;
      const description = root.dataset.description;
      const modes = element("div", { class: "lx-modes", role: "group", "aria-label": "What the pointer does" }, root);
      this.modeButtons = {
        decode: element("button", { type: "button", "aria-pressed": "true" }, modes, "Decode under the pointer"),
        interpolate: element("button", { type: "button", "aria-pressed": "false" }, modes,
                             "Interpolate between two clicks"),
      };
      for (const [mode, button] of Object.entries(this.modeButtons)) {
        button.addEventListener("click", () => this.setMode(mode));
      }
      const panels = element("div", { class: "lx-panels" }, root);
      this.planeBox = element("div", { class: "lx-plane" }, panels);
      this.plane = element("canvas", {
        class: "lx-plane-canvas", tabindex: "0", role: "img",
        "aria-label": "Latent plane of the encoded test digits, coloured by label; move the pointer, a finger "
          + "or the arrow keys over it to decode a point",
        "aria-describedby": description,
      }, this.planeBox);
      const legend = element("ul", { class: "lx-legend", "aria-label": "Colours of the labels" }, this.planeBox);
      for (const label of [...new Set(this.labels)].sort((a, b) => a - b)) {
        const item = element("li", {}, legend);
        element("span", { class: "lx-swatch", style: `background:${TAB10[label % 10]}` }, item);
        item.appendChild(document.createTextNode(String(label)));
      }
      const side = element("div", { class: "lx-side" }, panels);
      element("p", { class: "lx-panel-title" }, side, "Decoded image at the pointer");
      this.image = element("canvas", {
        class: "lx-image", role: "img", "aria-describedby": description,
        "aria-label": "The decoder's mean image at the pointer's point of the latent plane",
      }, side);
      this.strips = element("div", { class: "lx-strips", hidden: "" }, root);
      this.stripCanvases = {};
      for (const [kind, title] of [["straight", "Straight line"], ["spherical", "Spherical path (slerp)"]]) {
        element("p", { class: "lx-panel-title" }, this.strips, title);
        this.stripCanvases[kind] = element("canvas", {
          class: "lx-strip", role: "img",
          "aria-label": `${STEPS} images decoded along the ${title.toLowerCase()} between the two chosen points`,
        }, this.strips);
      }
      this.status = element("p", { class: "lx-status", "aria-live": "polite" }, root);

      this.plane.addEventListener("pointermove", (event) => this.show(this.latentAt(event)));
      this.plane.addEventListener("pointerdown", (event) => this.show(this.latentAt(event)));
      this.plane.addEventListener("click", (event) => this.choose(this.latentAt(event)));
      this.plane.addEventListener("keydown", (event) => this.key(event));
    }

    setMode(mode) {
      this.mode = mode;
      this.ends = [];
      this.strips.hidden = true;
      for (const [name, button] of Object.entries(this.modeButtons)) {
        button.setAttribute("aria-pressed", String(name === mode));
      }
      this.draw();
      this.describe(true);
    }

    resize() {
      const ratio = window.devicePixelRatio || 1;
      const size = Math.max(1, Math.round(this.plane.getBoundingClientRect().width));
      this.plane.width = Math.round(size * ratio);
      this.plane.height = Math.round(size * ratio);
      this.scale = ratio;
      this.size = size;
      this.margin = { left: 34, right: 8, top: 8, bottom: 30 };
      this.draw();
    }

    // CSS pixels of the plane canvas <-> latent coordinates.
    toScreen(z) {
      const m = this.margin, width = this.size - m.left - m.right, height = this.size - m.top - m.bottom;
      return [m.left + (z[0] + this.extent) / (2 * this.extent) * width,
              m.top + (this.extent - z[1]) / (2 * this.extent) * height];
    }

    latentAt(event) {
      const box = this.plane.getBoundingClientRect(), m = this.margin;
      const width = this.size - m.left - m.right, height = this.size - m.top - m.bottom;
      const clamp = (v) => Math.min(this.extent, Math.max(-this.extent, v));
      return [clamp(((event.clientX - box.left - m.left) / width * 2 - 1) * this.extent),
              clamp((1 - (event.clientY - box.top - m.top) / height * 2) * this.extent)];
    }

    key(event) {
      const step = (event.shiftKey ? 0.25 : 0.05) * this.extent;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[event.key]) {
        const clamp = (v) => Math.min(this.extent, Math.max(-this.extent, v));
        this.show([clamp(this.cursor[0] + moves[event.key][0]), clamp(this.cursor[1] + moves[event.key][1])], true);
      } else if (event.key === "Enter" || event.key === " ") {
        this.choose(this.cursor);
      } else {
        return;
      }
      event.preventDefault();
    }

    show(z, announce) {
      this.cursor = z;
      paintImages(this.image, [this.decode(z)], this.payload.image_shape);
      this.draw();
      this.describe(announce);
    }

    choose(z) {
      if (this.mode !== "interpolate") return;
      this.ends = this.ends.length === 1 ? [this.ends[0], z] : [z];
      if (this.ends.length === 2) {
        for (const [kind, path] of [["straight", straight], ["spherical", spherical]]) {
          const images = [];
          for (let k = 0; k < STEPS; k++) images.push(this.decode(path(this.ends[0], this.ends[1], k / (STEPS - 1))));
          paintImages(this.stripCanvases[kind], images, this.payload.image_shape);
        }
      }
      this.strips.hidden = this.ends.length !== 2;
      this.draw();
      this.describe(true);
    }

    draw() {
      const context = this.plane.getContext("2d");
      const style = getComputedStyle(this.root);
      context.setTransform(this.scale, 0, 0, this.scale, 0, 0);
      context.clearRect(0, 0, this.size, this.size);
      const m = this.margin;
      const [left, top] = this.toScreen([-this.extent, this.extent]);
      const [right, bottom] = this.toScreen([this.extent, -this.extent]);
      context.strokeStyle = style.color;
      context.fillStyle = style.color;
      context.globalAlpha = 0.35;
      context.strokeRect(left, top, right - left, bottom - top);
      context.globalAlpha = 1;
      context.font = `11px ${style.fontFamily}`;
      context.textAlign = "center";
      context.textBaseline = "top";
      const tick = this.extent >= 4 ? 2 : 1;
      for (let v = -Math.floor(this.extent / tick) * tick; v <= this.extent; v += tick) {
        const [x] = this.toScreen([v, 0]);
        const [, y] = this.toScreen([0, v]);
        context.fillText(String(v).replace("-", "\u2212"), x, bottom + 3);
        context.textAlign = "right";
        context.textBaseline = "middle";
        context.fillText(String(v).replace("-", "\u2212"), left - 4, y);
        context.textAlign = "center";
        context.textBaseline = "top";
      }
      context.fillText("z\u2081", (left + right) / 2, this.size - m.bottom + 16);
      context.save();
      context.translate(9, (top + bottom) / 2);
      context.rotate(-Math.PI / 2);
      context.textBaseline = "middle";
      context.fillText("z\u2082", 0, 0);
      context.restore();

      context.globalAlpha = 0.75;
      this.points.forEach((z, i) => {
        const [x, y] = this.toScreen(z);
        context.fillStyle = TAB10[this.labels[i] % 10];
        context.fillRect(x - 1.5, y - 1.5, 3, 3);
      });
      context.globalAlpha = 1;

      context.strokeStyle = style.color;
      context.lineWidth = 1.5;
      if (this.ends.length === 2) {
        for (const [path, dash] of [[straight, []], [spherical, [5, 4]]]) {
          context.setLineDash(dash);
          context.beginPath();
          for (let k = 0; k <= 60; k++) {
            const [x, y] = this.toScreen(path(this.ends[0], this.ends[1], k / 60));
            if (k === 0) context.moveTo(x, y); else context.lineTo(x, y);
          }
          context.stroke();
        }
        context.setLineDash([]);
      }
      for (const end of this.ends) {
        const [x, y] = this.toScreen(end);
        context.beginPath();
        context.arc(x, y, 5, 0, 2 * Math.PI);
        context.stroke();
      }
      const [x, y] = this.toScreen(this.cursor);
      context.beginPath();
      context.moveTo(x - 7, y); context.lineTo(x + 7, y);
      context.moveTo(x, y - 7); context.lineTo(x, y + 7);
      context.stroke();
    }

    // The status line: where the pointer is and which labels its nearest test digits carry. Screen
    // readers hear it (aria-live), so it changes at most every STATUS_EVERY_MS, and always at the end.
    describe(now) {
      clearTimeout(this.pending);
      const wait = STATUS_EVERY_MS - (Date.now() - (this.lastStatus || 0));
      if (!now && wait > 0) {
        this.pending = setTimeout(() => this.describe(true), wait);
        return;
      }
      this.lastStatus = Date.now();
      const z = this.cursor;
      const nearest = this.points
        .map((p, i) => [(p[0] - z[0]) ** 2 + (p[1] - z[1]) ** 2, this.labels[i]])
        .sort((a, b) => a[0] - b[0]).slice(0, NEIGHBOURS);
      const counts = {};
      for (const [, label] of nearest) counts[label] = (counts[label] || 0) + 1;
      const common = Object.entries(counts).sort((a, b) => b[1] - a[1])
        .map(([label, count]) => `${count} \u00d7 ${label}`).join(", ");
      let text = `Pointer at z = (${format(z[0])}, ${format(z[1])}); labels of the ${NEIGHBOURS} nearest test `
        + `digits: ${common}.`;
      if (this.mode === "interpolate") {
        text += this.ends.length === 2
          ? ` Paths from (${this.ends[0].map(format).join(", ")}) to (${this.ends[1].map(format).join(", ")}).`
          : this.ends.length === 1 ? " Click a second point." : " Click a first point.";
      }
      this.status.textContent = text;
    }
  }

  window.vaeBookLatentExplorer = {
    decode: (name, z) => Array.from(decoderFor(name)(z)),
    straight,
    spherical,
  };

  function start() {
    for (const root of document.querySelectorAll("div.latent-explorer[data-decoder]")) {
      try {
        root.explorer = new Explorer(root);
      } catch (error) {
        root.textContent = `The interactive figure could not start (${error.message}); its description follows.`;
        console.error(error);
      }
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
