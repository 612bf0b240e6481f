// Prints the import graph between src/'s top-level folders (from dependency-cruiser's JSON on
// stdin): one "from -> to (files)" line per edge, then the folder cycles. Used to review layering.
import { readFileSync } from 'node:fs';

const result = JSON.parse(readFileSync(0, 'utf8'));
const folderOf = (file) => {
  const parts = file.split('/');
  return parts[0] === 'src' && parts.length > 2 ? parts[1] : parts.slice(0, 2).join('/');
};
const edges = new Map();
for (const mod of result.modules) {
  if (!mod.source.startsWith('src/')) continue;
  const from = folderOf(mod.source);
  for (const dep of mod.dependencies) {
    if (!dep.resolved.startsWith('src/') || dep.coreModule) continue;
    const to = folderOf(dep.resolved);
    if (to === from) continue;
    const key = `${from} -> ${to}`;
    if (!edges.has(key)) edges.set(key, new Set());
    edges.get(key).add(mod.source);
  }
}
const keys = [...edges.keys()].sort();
console.log(`folder edges: ${keys.length}`);
for (const key of keys) console.log(`${key} (${edges.get(key).size} files: ${[...edges.get(key)].sort().join(', ')})`);

// Strongly connected components of the folder graph (Tarjan): every component of 2+ folders is a cycle.
const graph = new Map();
for (const key of keys) {
  const [from, to] = key.split(' -> ');
  if (!graph.has(from)) graph.set(from, []);
  if (!graph.has(to)) graph.set(to, []);
  graph.get(from).push(to);
}
let index = 0;
const stack = [];
const meta = new Map();
const components = [];
const visit = (v) => {
  meta.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v)) {
    if (!meta.has(w)) {
      visit(w);
      meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).low);
    } else if (meta.get(w).onStack) meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).index);
  }
  if (meta.get(v).low === meta.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      meta.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1) components.push(component.sort());
  }
};
for (const v of graph.keys()) if (!meta.has(v)) visit(v);
const twoWay = keys.filter((key) => {
  const [from, to] = key.split(' -> ');
  return from < to && edges.has(`${to} -> ${from}`);
});
console.log(`\nfolder cycles (strongly connected groups): ${components.length}`);
for (const c of components) console.log(`  {${c.join(', ')}}`);
console.log(`two-way folder pairs: ${twoWay.length}`);
for (const key of twoWay) console.log(`  ${key.replace(' -> ', ' <-> ')}`);
