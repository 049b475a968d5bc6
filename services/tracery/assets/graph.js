// Genealogy drawn as a layered graph: the identifier in the middle, what it came from in
// columns to the left (one per trace depth), where it went in columns to the right.
// Hand-written because the layout is fixed by the trace itself (depth = column), which
// takes forty lines; a general graph-layout library would add 400 KB for nothing more.
import { html } from "/assets/htm-preact.mjs";

const COLUMN = 250, ROW = 46, BOX_W = 210, BOX_H = 32, MAX_PER_COLUMN = 20;

// A label that fits the box: what the identifier is, and its own part.
const short = (id) => {
  const link = id.match(/^https:\/\/id\.gs1\.org\/(\d+)\/(\d+)(?:\/(\d+)\/([^/?]+))?/);
  if (link) {
    const [, ai, key, qualifier, value] = link;
    if (qualifier === "21") return `serial ${decodeURIComponent(value)}`;
    if (qualifier === "10") return `lot ${decodeURIComponent(value)}`;
    if (ai === "00") return `SSCC ${key}`;
    if (ai === "414" || ai === "417") return `GLN ${key}`;
    return `GTIN ${key}`;
  }
  const urn = id.match(/^urn:epc:(?:id|class):(\w+):(.+)$/);
  if (urn) return `${urn[1]} ${urn[2]}`.slice(0, 30);
  return id.slice(-30);
};

export function layout(root, backward, forward) {
  const nodes = new Map();
  const place = (node, side) => {
    const column = node.id === root ? 0 : side * Math.max(1, node.depth);
    if (!nodes.has(node.id)) nodes.set(node.id, { ...node, column });
  };
  nodes.set(root, { id: root, kind: "root", depth: 0, column: 0 });
  backward.nodes.forEach((n) => place(n, -1));
  forward.nodes.forEach((n) => place(n, 1));
  const columns = new Map();
  for (const node of nodes.values()) {
    if (!columns.has(node.column)) columns.set(node.column, []);
    columns.get(node.column).push(node);
  }
  const shown = new Map();
  const hidden = [];
  for (const [column, list] of columns) {
    list.sort((a, b) => a.id.localeCompare(b.id));
    list.slice(0, MAX_PER_COLUMN).forEach((node, row) => shown.set(node.id, { ...node, row }));
    if (list.length > MAX_PER_COLUMN) hidden.push({ column, count: list.length - MAX_PER_COLUMN });
  }
  const keys = [...columns.keys()];
  const minColumn = Math.min(...keys), maxColumn = Math.max(...keys);
  const tallest = Math.max(...[...columns.values()].map((l) => Math.min(l.length, MAX_PER_COLUMN) + 1));
  const position = (node) => ({
    x: 20 + (node.column - minColumn) * COLUMN,
    y: 20 + node.row * ROW,
  });
  const edges = [...backward.edges, ...forward.edges]
    .filter((e) => shown.has(e.from) && shown.has(e.to))
    .map((e) => ({ ...e, a: position(shown.get(e.from)), b: position(shown.get(e.to)) }));
  return {
    nodes: [...shown.values()].map((n) => ({ ...n, ...position(n) })),
    edges,
    hidden: hidden.map((h) => ({ ...h, x: 20 + (h.column - minColumn) * COLUMN, y: 20 + MAX_PER_COLUMN * ROW })),
    width: 40 + (maxColumn - minColumn) * COLUMN + BOX_W,
    height: 40 + tallest * ROW,
  };
}

export function Graph({ root, backward, forward, onPick }) {
  const g = layout(root, backward, forward);
  return html`
    <svg class="graph" width="100%" style="max-width:${g.width}px;height:auto" viewBox="0 0 ${g.width} ${g.height}" role="img"
         aria-label="genealogy of ${root}">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" fill="#7a8699" />
        </marker>
      </defs>
      ${g.edges.map((e) => {
        const [a, b] = e.a.x <= e.b.x ? [e.a, e.b] : [e.b, e.a];
        const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x, y2 = b.y + BOX_H / 2;
        const mid = (x1 + x2) / 2;
        return html`<path class="edge ${e.kind.replace(/ /g, "-")}" marker-end="url(#arrow)"
          d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}"><title>${e.from} ${e.kind} ${e.to}${e.bizStep ? ` (${e.bizStep}, ${e.eventTime})` : ""}</title></path>`;
      })}
      ${g.nodes.map((n) => html`
        <g class="node ${n.kind}" data-id=${n.id} transform="translate(${n.x},${n.y})"
           onClick=${() => n.id !== root && onPick(n.id)} tabindex="0">
          <title>${n.id} (${n.kind})</title>
          <rect width=${BOX_W} height=${BOX_H} rx="6" />
          <text x="10" y="20">${short(n.id)}</text>
        </g>`)}
      ${g.hidden.map((h) => html`<text class="more" x=${h.x + 10} y=${h.y + 20}>+${h.count} more</text>`)}
    </svg>`;
}
