// llama.cpp prefill and decode tokens/s on a GGUF file, through node-llama-cpp's prebuilt
// CPU binaries, measured the way `awq bench` measures ours: after a warm-up, REPEAT times
// (on a cleared sequence): prefill = one evaluation of PROMPT pseudo-random token ids
// (batch = PROMPT, so one batch); decode = GEN greedy tokens one at a time after that
// prompt (GEN single-token evaluations). Reports min and median tok/s.
//
// node bench.mjs --model FILE.gguf [--threads 2] [--prompt 128] [--gen 64] [--repeat 5] [--label Q4_0]
// Prints one JSON object: engine, weights, model, threads, prompt, gen, prefill_tps{min,median},
// decode_tps{min,median}.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function args() {
  const a = {threads: 2, prompt: 128, gen: 64, repeat: 5, label: ""};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, "")] = argv[i + 1];
  if (!a.model) {
    console.error("usage: node bench.mjs --model FILE.gguf [--threads N] [--prompt P] [--gen G] [--repeat R] [--label NAME]");
    process.exit(2);
  }
  for (const k of ["threads", "prompt", "gen", "repeat"]) {
    a[k] = Number(a[k]);
    if (!Number.isInteger(a[k]) || a[k] < 1) {
      console.error(`--${k} must be a positive integer`);
      process.exit(2);
    }
  }
  return a;
}

const median = (v) => { const s = [...v].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const now = () => Number(process.hrtime.bigint()) / 1e9;

const a = args();
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: a.threads});
const model = await llama.loadModel({modelPath: a.model, gpuLayers: 0});
const context = await model.createContext({contextSize: a.prompt + a.gen + 8, batchSize: a.prompt, threads: a.threads, sequences: 1});
const seq = context.getSequence();

// Fixed pseudo-random prompt ids (an LCG), avoiding the first 3 (special) ids.
const nVocab = model.tokens.vocabSize ?? 32000;
const prompt = [];
for (let i = 0, x = 12345; i < a.prompt; i++) { x = (x * 1103515245 + 12345) % 2147483648; prompt.push(3 + (x % (nVocab - 3))); }

async function once() {
  await seq.clearHistory();
  let t0 = now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const prefill = a.prompt / (now() - t0);
  t0 = now();
  let n = 0;
  // The first yielded token needs one evaluation (the last prompt id is re-fed as input,
  // since the prompt was evaluated without sampling), every later one another: GEN in all.
  for await (const _ of seq.evaluate([prompt[prompt.length - 1]], {temperature: 0})) {
    if (++n >= a.gen) break;
  }
  const decode = a.gen / (now() - t0);
  return {prefill, decode};
}

await once();  // warm-up
const pre = [], dec = [];
for (let r = 0; r < a.repeat; r++) {
  const {prefill, decode} = await once();
  pre.push(prefill);
  dec.push(decode);
}
const round = (x) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  engine: "llama.cpp (node-llama-cpp 3.21.1)", weights: a.label, model: a.model, threads: a.threads, prompt: a.prompt, gen: a.gen,
  prefill_tps: {min: round(Math.min(...pre)), median: round(median(pre))},
  decode_tps: {min: round(Math.min(...dec)), median: round(median(dec))},
}));
await context.dispose();
await model.dispose();
await llama.dispose();
