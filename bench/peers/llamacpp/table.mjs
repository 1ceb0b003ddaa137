// Prints the peer comparison as a Markdown table from the JSON results of bench.mjs
// (llama.cpp) and `awq bench --json` (ours): ratios are ours ÷ llama.cpp on medians, W4 vs
// Q4_0 and FP16 vs F16, all measured in the same run.
// node table.mjs llamacpp_q4_0.json ours_w4.json llamacpp_f16.json ours_fp16.json (a missing file is skipped)
import {existsSync, readFileSync} from "node:fs";

const [lq4, ow4, lf16, of16] = process.argv.slice(2).map((p) => (p && existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : null));
const f = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const cell = (t) => `${f(t.min)} / ${f(t.median)}`;
const ratio = (o, l, k) => (o && l ? (o[k].median / l[k].median).toFixed(2) + "x" : "");
const rows = [
  ["llama.cpp", "Q4_0 (output Q8_0)", lq4, null, null],
  ["awq.cpp", "W4 g128 (AWQ GEMM, lm_head FP16)", ow4, lq4, "vs Q4_0"],
  ["llama.cpp", "F16", lf16, null, null],
  ["awq.cpp", "FP16", of16, lf16, "vs F16"],
];
const any = lq4 || ow4 || lf16 || of16;
console.log(`| engine | weights | prefill tok/s (min / median) | decode tok/s (min / median) | prefill ratio ours÷llama.cpp | decode ratio ours÷llama.cpp |`);
console.log(`|---|---|---|---|---|---|`);
for (const [engine, weights, r, peer, what] of rows) {
  if (!r) continue;
  console.log(`| ${engine} | ${weights} | ${cell(r.prefill_tps)} | ${cell(r.decode_tps)} | ` +
              `${peer ? ratio(r, peer, "prefill_tps") + " " + what : ""} | ${peer ? ratio(r, peer, "decode_tps") + " " + what : ""} |`);
}
if (any) console.log(`\nthreads ${any.threads}, prompt ${any.prompt} tokens, gen ${any.gen} tokens`);
