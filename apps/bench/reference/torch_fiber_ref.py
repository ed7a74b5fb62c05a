#!/usr/bin/env python3
"""Self-contained PyTorch reference of the coarse-grained FIBER model (Swin + RoBERTa with fusion in the backbone).

(Shipped with fiber-bench as its side-by-side reference; `--bench train` is added here: one training
step, loss = mean(cls_feats^2) of the fused forward, backward, torch.optim.AdamW over every float weight.)

Written from design/fiber-spec.md (sections 1-2); it imports no FIBER, timm or transformers code and reads
safetensors with its own reader. It keeps the official state-dict key names and runs the same tensor operations
as the official code (microsoft/FIBER @ca0f36b), so that
  * its CPU timings stand in for the official code's (side-by-side baseline, measured side by side with the project);
  * `--check` reproduces the official-code golden fixtures (set A format, e.g. fixtures/fiber/tiny_coarse).

  torch_fiber_ref.py --check FIXTURE_DIR [--tol 1e-5]
  torch_fiber_ref.py --config tiny|fiber-b-384|fiber-b-576 [--weights X.safetensors | --seed N]
      [--init official|fixture] --bench fused|dual-image|dual-text [--batch N] [--text-len L] [--repeat R] [--warmup W]
      [--threads T] [--coretype SkylakeX] [--omp-wait-policy passive|active|default] [--flops]
      [--save-weights OUT.safetensors]

Prints one JSON object. Run it with Debian's /usr/bin/python3 (python3-torch 1.13, CPU, float32).
Threads: `--threads T` sets torch's pool AND OpenBLAS's pool (Debian's torch calls OpenBLAS through the generic
BLAS interface, so torch.set_num_threads alone does not limit OpenBLAS). OMP_WAIT_POLICY=PASSIVE is set by
default so that torch's spinning OpenMP threads do not starve OpenBLAS's pthreads. `--coretype SkylakeX` sets
OPENBLAS_CORETYPE: OpenBLAS 0.3.21 does not recognise this CPU and falls back to generic kernels otherwise.
"""
import argparse, json, math, os, resource, statistics, struct, sys, time


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="FIXTURE_DIR", help="compare all outputs of a set-A fixture folder")
    ap.add_argument("--tol", type=float, default=1e-5, help="max abs diff allowed by --check")
    ap.add_argument("--config", choices=sorted(PRESETS), default="fiber-b-384")
    ap.add_argument("--weights", help="safetensors state dict with official key names (default: random init)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random init and of the bench inputs")
    ap.add_argument("--init", choices=["official", "fixture"], default="official", help="random-init scheme")
    ap.add_argument("--save-weights", metavar="OUT", help="write the (random) weights as safetensors, then go on")
    ap.add_argument("--bench", choices=["fused", "dual-image", "dual-text", "train"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--text-len", type=int, help="text tokens (default: the preset's max_text_len)")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs (the median is reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    ap.add_argument("--threads", type=int, help="torch + OpenBLAS + OpenMP threads (default: leave as is)")
    ap.add_argument("--coretype", help="OPENBLAS_CORETYPE, e.g. SkylakeX (default: leave as is)")
    ap.add_argument("--omp-wait-policy", choices=["passive", "active", "default"], default="passive",
                    help="OMP_WAIT_POLICY; 'default' leaves the environment (libgomp spins, which starves "
                         "OpenBLAS's own threads: up to 1.7x slower with 2 threads here)")
    ap.add_argument("--flops", action="store_true", help="also count matmul/conv FLOPs with an aten-level hook")
    a = ap.parse_args(argv)
    if not a.check and not a.bench and not a.save_weights:
        ap.error("give --check, --bench or --save-weights")
    return a


# ------------------------------------------------------------------------------------------------ configs
# Model hyper-parameters. The window is image_size // 32 (the official Swin overrides its registered window).
PRESETS = {
    "tiny": dict(image_size=128, embed_dim=16, depths=(2, 2, 18, 2), swin_heads=(2, 4, 8, 16), text_hidden=32,
                 text_heads=4, text_ffn=128, vocab_size=120, max_positions=40, hidden_size=48, num_fuse=6,
                 vqa_labels=10, text_len=16, heads=("itm", "itc", "mlm", "vqa", "nlvr2", "caption")),
    # pre-training model (ITM + ITC + MLM heads), 384 px, 40 tokens
    "fiber-b-384": dict(image_size=384, embed_dim=128, depths=(2, 2, 18, 2), swin_heads=(4, 8, 16, 32),
                        text_hidden=768, text_heads=12, text_ffn=3072, vocab_size=50265, max_positions=514,
                        hidden_size=768, num_fuse=6, vqa_labels=3129, text_len=40, heads=("itm", "itc", "mlm")),
    # VQAv2 fine-tune model (VQA head), 576 px, 50 tokens
    "fiber-b-576": dict(image_size=576, embed_dim=128, depths=(2, 2, 18, 2), swin_heads=(4, 8, 16, 32),
                        text_hidden=768, text_heads=12, text_ffn=3072, vocab_size=50265, max_positions=514,
                        hidden_size=768, num_fuse=6, vqa_labels=3129, text_len=50, heads=("vqa",)),
}


class Config:
    patch_size, text_layers, pad_id = 4, 12, 1

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.window = self.image_size // 32
        self.dims = [self.embed_dim * 2 ** i for i in range(4)]  # Swin stage widths
        self.grids = [self.image_size // self.patch_size // 2 ** i for i in range(4)]  # stage resolutions
        self.wins = [min(self.window, g) for g in self.grids]  # a stage <= window is one unshifted window

    def shifted(self, i, j):
        return j % 2 == 1 and self.grids[i] > self.window

    def i2t(self, i, j):  # Swin blocks with image->text cross-attention
        return i == 3 or (i == 2 and j >= 20 - self.num_fuse)

    @staticmethod
    def from_fixture(c):  # set-A config.json
        sw, rb, fc = c["swin"], c["roberta"], c["full_fiber_config"]
        assert sw["patch_size"] == 4 and rb["num_hidden_layers"] == 12 and sw["depths"][2:] == [18, 2]
        tasks = {"caption_mle": "caption"}
        return Config(image_size=sw["img_size"], embed_dim=sw["embed_dim"], depths=tuple(sw["depths"]),
                      swin_heads=tuple(sw["num_heads"]), text_hidden=rb["hidden_size"],
                      text_heads=rb["num_attention_heads"], text_ffn=rb["intermediate_size"],
                      vocab_size=rb["vocab_size"], max_positions=rb["max_position_embeddings"],
                      hidden_size=fc["hidden_size"], num_fuse=fc["num_fuse_block"],
                      vqa_labels=fc["vqav2_label_size"], text_len=fc["max_text_len"],
                      heads=tuple(tasks.get(k, k) for k, v in fc["loss_names"].items() if v > 0))


if __name__ == "__main__":  # thread / kernel settings must be in the environment before OpenBLAS loads
    ARGS = parse_args()
    if ARGS.threads:
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    if ARGS.coretype:
        os.environ["OPENBLAS_CORETYPE"] = ARGS.coretype
    if ARGS.omp_wait_policy != "default":
        os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait_policy.upper()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ------------------------------------------------------------------------------------------------ safetensors
# Format: u64 little-endian header size, JSON header {name: {dtype, shape, data_offsets}}, then raw
# little-endian data (offsets relative to the end of the header). Assumes a little-endian host.
ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
             "BOOL": torch.bool}


def read_safetensors(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        (n,) = struct.unpack("<Q", f.read(8)) if size >= 8 else (None,)
        if n is None or n > size - 8:
            raise ValueError(f"{path}: not a safetensors file (bad header size)")
        header, base, out = json.loads(f.read(n)), 8 + n, {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info.get("dtype") not in ST_DTYPES:
                raise ValueError(f"{path}: {name}: unsupported dtype {info.get('dtype')}")
            dt, shape, (b, e) = ST_DTYPES[info["dtype"]], info["shape"], info["data_offsets"]
            nbytes = math.prod(shape) * torch.empty((), dtype=dt).element_size()
            if not 0 <= b <= e or e - b != nbytes or e > size - base:
                why = "past the end of the file (truncated?)" if e > size - base else f"do not fit shape {shape}"
                raise ValueError(f"{path}: {name}: data_offsets [{b}, {e}] {why}")
            buf = bytearray(nbytes)
            f.seek(base + b)
            f.readinto(buf)
            out[name] = (torch.frombuffer(buf, dtype=dt) if nbytes else torch.empty(0, dtype=dt)).reshape(shape)
    return out


def write_safetensors(path, tensors, metadata=None):
    names = {v: k for k, v in ST_DTYPES.items()}
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous()
        b = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


# ------------------------------------------------------------------------------------------------ weights
def official_keys(c):
    """Official FIBERTransformerSS state-dict layout for config c: key -> (shape, kind). ITC queues left out."""
    S = {}

    def lin(k, i, o, bias=True):
        S[k + ".weight"] = ((o, i), "w")
        if bias:
            S[k + ".bias"] = ((o,), "b")

    def ln(k, d):
        S[k + ".weight"], S[k + ".bias"] = ((d,), "ln_w"), ((d,), "ln_b")

    D, H, E8 = c.text_hidden, c.hidden_size, c.dims[3]
    if "itc" in c.heads:
        S["temp"] = ((), "temp")
    for sfx in ("", "_itc"):
        lin("cross_modal_text_transform" + sfx, D, H)
        lin("cross_modal_image_transform" + sfx, E8, H)
    v = "vit_model"
    S[v + ".patch_embed.proj.weight"] = ((c.embed_dim, 3, c.patch_size, c.patch_size), "w")
    S[v + ".patch_embed.proj.bias"] = ((c.embed_dim,), "b")
    ln(v + ".patch_embed.norm", c.embed_dim)
    for i, depth in enumerate(c.depths):
        C, w, nh = c.dims[i], c.wins[i], c.swin_heads[i]
        for j in range(depth):
            b = f"{v}.layers.{i}.blocks.{j}"
            if c.shifted(i, j):
                S[b + ".attn_mask"] = (((c.grids[i] // w) ** 2, w * w, w * w), "attn_mask")
            ln(b + ".norm1", C)
            S[b + ".attn.relative_position_bias_table"] = (((2 * w - 1) ** 2, nh), "table")
            S[b + ".attn.relative_position_index"] = ((w * w, w * w), "rel_index")
            lin(b + ".attn.qkv", C, 3 * C)
            lin(b + ".attn.proj", C, C)
            if c.i2t(i, j):
                S[b + ".attn.alpha_i2t"] = ((1,), "alpha")
                lin(b + ".attn.qkv_text_i2t", D, 2 * C)
                lin(b + ".attn.qkv_i2t", C, C)
                lin(b + ".attn.proj_i2t", C, C)
                ln(b + ".attn.norm_i2t_i", C)
            ln(b + ".norm2", C)
            lin(b + ".mlp.fc1", C, 4 * C)
            lin(b + ".mlp.fc2", 4 * C, C)
        if i < 3:
            lin(f"{v}.layers.{i}.downsample.reduction", 4 * C, 2 * C, bias=False)
            ln(f"{v}.layers.{i}.downsample.norm", 4 * C)
    ln(v + ".norm", E8)
    t = "text_transformer"
    S[t + ".embeddings.position_ids"] = ((1, c.max_positions), "position_ids")
    for name, rows in (("word", c.vocab_size), ("position", c.max_positions), ("token_type", 1)):
        S[f"{t}.embeddings.{name}_embeddings.weight"] = ((rows, D), "emb")
    ln(t + ".embeddings.LayerNorm", D)
    for l in range(c.text_layers):
        a = f"{t}.encoder.layer.{l}"
        S[a + ".alpha_t2i"] = ((1,), "alpha")
        for p in ("query", "key", "value"):
            lin(f"{a}.attention.self.{p}", D, D)
        lin(a + ".attention.output.dense", D, D)
        ln(a + ".attention.output.LayerNorm", D)
        if l >= c.text_layers - c.num_fuse:  # text->image cross-attention, K/V from native Swin widths
            kv = c.dims[2] if l < 10 else c.dims[3]
            lin(a + ".crossattention_t2i.self.query", D, D)
            lin(a + ".crossattention_t2i.self.key", kv, D)
            lin(a + ".crossattention_t2i.self.value", kv, D)
            lin(a + ".crossattention_t2i.output.dense", D, D)
            ln(a + ".crossattention_t2i.output.LayerNorm", D)  # present, never used
        lin(a + ".intermediate.dense", D, c.text_ffn)
        lin(a + ".output.dense", c.text_ffn, D)
        ln(a + ".output.LayerNorm", D)
    lin(t + ".pooler.dense", D, D)  # present, never used
    for p in ("image", "text"):
        for sfx in ("", "_itc"):
            lin(f"cross_modal_{p}_pooler{sfx}.dense", H, H)
    if "mlm" in c.heads or "caption" in c.heads:
        S["mlm_score.bias"] = ((c.vocab_size,), "b")
        lin("mlm_score.transform.dense", H, H)
        ln("mlm_score.transform.LayerNorm", H)
        lin("mlm_score.decoder", H, c.vocab_size, bias=False)
    if "itm" in c.heads:
        lin("itm_score.fc", 2 * H, 2)
        S["rank_output.weight"], S["rank_output.bias"] = ((1, 2 * H), "rank"), ((1,), "rank")
    for task, inp, out in (("vqa", 2 * H, c.vqa_labels), ("nlvr2", 4 * H, 2)):
        if task in c.heads:
            lin(f"{task}_classifier.0", inp, 2 * H)
            ln(f"{task}_classifier.1", 2 * H)
            lin(f"{task}_classifier.3", 2 * H, out)
    if "caption" in c.heads:
        for l in range(c.text_layers - 2):
            lin(f"cross_modal_att_layers.{l}", E8, E8 // 2)
    return S


def shape_ok(t, shape):  # official `temp` is 0-d; some writers store it as [1]
    return tuple(t.shape) == tuple(shape) or (shape == () and t.numel() == 1)


def random_weights(c, seed=0, init="official"):
    """Deterministic random weights in the official layout. init="official": the official code's init (N(0,0.02)
    matrices, embeddings and position tables; zero biases and fusion gates; LN 1/0). init="fixture": the golden
    fixtures' scheme (LN 1+0.2N, matrices N/sqrt(fan_in), gates U(0.3,1.2)): every fusion branch contributes, and
    the peakier attention yields denormal softmax outputs that slow OpenBLAS (measured side by side with the project)."""
    fx, g, W = init == "fixture", torch.Generator().manual_seed(seed), {}
    scale = dict(b=0.1, ln_b=0.1, emb=0.5, table=0.5) if fx else dict(b=0.0, ln_b=0.0, emb=0.02, table=0.02)
    for k, (shape, kind) in official_keys(c).items():
        if kind == "w":
            W[k] = torch.randn(shape, generator=g) * (1 / math.sqrt(math.prod(shape[1:])) if fx else 0.02)
        elif kind in scale:
            W[k] = scale[kind] * torch.randn(shape, generator=g)
        elif kind == "ln_w":
            W[k] = 1.0 + (0.2 if fx else 0.0) * torch.randn(shape, generator=g)
        elif kind == "alpha":
            W[k] = torch.empty(shape).uniform_(0.3, 1.2, generator=g) if fx else torch.zeros(shape)
        elif kind == "temp":
            W[k] = torch.tensor(0.07)
        elif kind == "position_ids":
            W[k] = torch.arange(shape[1]).unsqueeze(0)
        elif kind == "rel_index":
            W[k] = rel_index(int(math.isqrt(shape[0])))
    for k, (shape, kind) in official_keys(c).items():  # buffers / views that depend on other entries
        if kind == "attn_mask":
            i = int(k.split(".")[2])
            W[k] = shift_mask(c.grids[i], c.wins[i], c.wins[i] // 2)
        elif kind == "rank":  # official rank_output is a view of itm_score.fc row 1
            W[k] = W["itm_score.fc." + k.split(".")[-1]][1:]
    return W


def rel_index(w):  # relative_position_index of a w x w window (standard Swin)
    ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
    c = torch.stack([ys.flatten(), xs.flatten()])
    r = (c[:, :, None] - c[:, None, :]).permute(1, 2, 0) + (w - 1)
    return r[..., 0] * (2 * w - 1) + r[..., 1]


def shift_mask(R, w, s):  # 0 / -100 mask of a shifted-window block, [nW, w*w, w*w]
    lab, cnt = torch.zeros(R, R), 0
    for hs in (slice(0, -w), slice(-w, -s), slice(-s, None)):
        for ws in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            lab[hs, ws] = cnt
            cnt += 1
    m = lab.view(R // w, w, R // w, w).permute(0, 2, 1, 3).reshape(-1, w * w)
    d = m[:, None, :] - m[:, :, None]
    return d.masked_fill(d != 0, -100.0).masked_fill(d == 0, 0.0)


# ------------------------------------------------------------------------------------------------ model
class FiberRef:
    """The coarse FIBER forward passes over a state dict W (official key names)."""

    def __init__(self, c, W):
        want = official_keys(c)
        bad = [f"{k}: want {list(s)}, got {list(W[k].shape)}" for k, (s, _) in want.items()
               if k in W and not shape_ok(W[k], s)]
        missing = [k for k, (_, kind) in want.items() if k not in W and kind not in ("attn_mask", "rank")]
        if bad or missing:
            raise ValueError("weights do not fit the config:\n  " + "\n  ".join(bad + [f"{k}: missing" for k in missing]))
        self.c, self.W = c, W
        # the official model keeps these as buffers: window relative-position indices and shift masks
        self.rel = {c.wins[i]: rel_index(c.wins[i]).view(-1) for i in range(4)}
        self.mask = {i: shift_mask(c.grids[i], c.wins[i], c.wins[i] // 2) for i in range(4) if c.grids[i] > c.window}

    # -- helpers
    def lin(self, x, k, bias=True):
        return F.linear(x, self.W[k + ".weight"], self.W[k + ".bias"] if bias else None)

    def ln(self, x, k, eps=1e-5):
        return F.layer_norm(x, (x.shape[-1],), self.W[k + ".weight"], self.W[k + ".bias"], eps)

    # -- Swin (spec 1.2, 1.4)
    def patch_embed(self, img):
        x = F.conv2d(img, self.W["vit_model.patch_embed.proj.weight"], self.W["vit_model.patch_embed.proj.bias"],
                     stride=self.c.patch_size)
        return self.ln(x.flatten(2).transpose(1, 2), "vit_model.patch_embed.norm")

    def swin_block(self, x, i, j, text=None, text_mask=None):
        c, p = self.c, f"vit_model.layers.{i}.blocks.{j}"
        C, R, w, nh = c.dims[i], c.grids[i], c.wins[i], c.swin_heads[i]
        s = w // 2 if c.shifted(i, j) else 0
        B, N, hd = x.shape[0], w * w, C // nh
        h = self.ln(x, p + ".norm1").view(B, R, R, C)
        if s:
            h = torch.roll(h, (-s, -s), (1, 2))
        h = h.view(B, R // w, w, R // w, w, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, N, C)  # windows
        Bw = h.shape[0]
        qkv = self.lin(h, p + ".attn.qkv").reshape(Bw, N, 3, nh, hd).permute(2, 0, 3, 1, 4)
        a = (qkv[0] * hd ** -0.5) @ qkv[1].transpose(-2, -1)
        tbl = self.W[p + ".attn.relative_position_bias_table"]
        a = a + tbl[self.rel[w]].view(N, N, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        if s:
            m = self.mask[i]
            a = (a.view(Bw // m.shape[0], m.shape[0], nh, N, N) + m.unsqueeze(1).unsqueeze(0)).view(-1, nh, N, N)
        o = self.lin((a.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(Bw, N, C), p + ".attn.proj")
        if text is not None:  # image->text cross-attention: every window attends to all text tokens
            T, nW = text.shape[1], Bw // B
            kv = self.lin(text, p + ".attn.qkv_text_i2t").reshape(B, T, 2, nh, hd).permute(2, 0, 3, 1, 4)
            kt, vt = torch.repeat_interleave(kv[0], nW, dim=0), torch.repeat_interleave(kv[1], nW, dim=0)
            q = self.lin(self.ln(o, p + ".attn.norm_i2t_i"), p + ".attn.qkv_i2t")
            q = q.reshape(Bw, N, nh, hd).transpose(1, 2) * hd ** -0.5
            ai = (q @ kt.transpose(-2, -1)) + torch.repeat_interleave(text_mask.view(B, 1, 1, T), nW, dim=0)
            y = self.lin((ai.softmax(-1) @ vt).transpose(1, 2).reshape(Bw, N, C), p + ".attn.proj_i2t")
            o = o + self.W[p + ".attn.alpha_i2t"] * y
        o = o.view(B, R // w, R // w, w, w, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(B, R, R, C)
        if s:
            o = torch.roll(o, (s, s), (1, 2))
        x = x + o.view(B, R * R, C)
        return x + self.lin(F.gelu(self.lin(self.ln(x, p + ".norm2"), p + ".mlp.fc1")), p + ".mlp.fc2")

    def patch_merge(self, x, i):
        B, R, C = x.shape[0], self.c.grids[i], x.shape[-1]
        x = x.view(B, R, R, C)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1).view(B, -1, 4 * C)
        p = f"vit_model.layers.{i}.downsample"
        return self.lin(self.ln(x, p + ".norm"), p + ".reduction", bias=False)

    def swin_image_only(self, img):  # all 4 stages, no text, no final norm
        x = self.patch_embed(img)
        for i, depth in enumerate(self.c.depths):
            for j in range(depth):
                x = self.swin_block(x, i, j)
            if i < 3:
                x = self.patch_merge(x, i)
        return x

    # -- RoBERTa (spec 1.3)
    def embeddings(self, ids):
        p, m = "text_transformer.embeddings", ids.ne(self.c.pad_id).int()
        pos = (torch.cumsum(m, dim=1).type_as(m) * m).long() + self.c.pad_id
        e = (self.W[p + ".word_embeddings.weight"][ids] + self.W[p + ".token_type_embeddings.weight"][0]
             + self.W[p + ".position_embeddings.weight"][pos])
        return self.ln(e, p + ".LayerNorm")

    def attention(self, x, kv, p, mask):  # BERT-style multi-head attention, no output projection
        B, L, nh = x.shape[0], x.shape[1], self.c.text_heads
        split = lambda t: t.view(t.shape[0], t.shape[1], nh, -1).permute(0, 2, 1, 3)  # noqa: E731
        q, k, v = split(self.lin(x, p + ".query")), split(self.lin(kv, p + ".key")), split(self.lin(kv, p + ".value"))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if mask is not None:
            s = s + mask
        return torch.matmul(s.softmax(-1), v).permute(0, 2, 1, 3).contiguous().view(B, L, -1)

    def text_layer(self, h, l, mask, img=None, last_norm=True):
        p = f"text_transformer.encoder.layer.{l}"
        a = self.lin(self.attention(h, h, p + ".attention.self", mask), p + ".attention.output.dense")
        if img is not None:  # text->image cross-attention; its query is the pre-residual self-attention output
            cr = self.attention(a, img, p + ".crossattention_t2i.self", None)
            a = self.W[p + ".alpha_t2i"] * self.lin(cr, p + ".crossattention_t2i.output.dense") + a
        h1 = self.ln(a + h, p + ".attention.output.LayerNorm")
        out = self.lin(F.gelu(self.lin(h1, p + ".intermediate.dense")), p + ".output.dense") + h1
        return self.ln(out, p + ".output.LayerNorm") if last_norm else out

    @staticmethod
    def ext_mask(mask):
        return (1.0 - mask[:, None, None, :].float()) * -10000.0

    def pool(self, x, p):  # token 0 -> dense -> tanh
        return torch.tanh(self.lin(x[:, 0], p + ".dense"))

    # -- passes (spec 1.5, 1.6, 2.3)
    def fused(self, img, ids, mask):
        c, ext = self.c, self.ext_mask(mask)
        x = self.patch_embed(img)
        for i in range(2):
            for j in range(c.depths[i]):
                x = self.swin_block(x, i, j)
            x = self.patch_merge(x, i)
        t, pre = self.embeddings(ids), c.text_layers - c.num_fuse
        for l in range(pre):
            t = self.text_layer(t, l, ext)
        for j in range(18):  # fused steps update both streams from the other's state *before* the step
            if j < 8 + pre:
                x = self.swin_block(x, 2, j)
            else:
                x, t = self.swin_block(x, 2, j, t, ext), self.text_layer(t, j - 8, ext, img=x)
        x = self.patch_merge(x, 2)
        for j in range(2):  # text layer 11 skips its output LayerNorm; no vit_model.norm here
            x, t = self.swin_block(x, 3, j, t, ext), self.text_layer(t, 10 + j, ext, img=x, last_norm=j == 0)
        tf, xf = self.lin(t, "cross_modal_text_transform"), self.lin(x, "cross_modal_image_transform")
        cls = torch.cat([self.pool(tf, "cross_modal_text_pooler"),
                         self.pool(xf.mean(1, keepdim=True), "cross_modal_image_pooler")], -1)
        return dict(text_feats=tf, image_feats=xf, cls_feats=cls)

    def dual_image(self, img):
        x = self.ln(self.swin_image_only(img), "vit_model.norm")
        xf = self.lin(x, "cross_modal_image_transform_itc")
        cls = self.pool(xf.mean(1, keepdim=True), "cross_modal_image_pooler_itc")
        return dict(image_feats=xf, image_cls=cls / cls.norm(dim=-1, keepdim=True))

    def dual_text(self, ids, mask):
        t, ext = self.embeddings(ids), self.ext_mask(mask)
        for l in range(self.c.text_layers):
            t = self.text_layer(t, l, ext)
        tf = self.lin(t, "cross_modal_text_transform_itc")
        cls = self.pool(tf, "cross_modal_text_pooler_itc")
        return dict(text_feats=tf, text_cls=cls / cls.norm(dim=-1, keepdim=True))

    def caption(self, img, ids, mask):  # causal text decoder with one-way cross-attention to the image
        c, x, L = self.c, self.swin_image_only(img), ids.shape[1]
        causal = torch.full((L, L), float("-inf")).triu(1)
        pad = (1.0 - mask[:, None, None, :].float())
        m = pad.masked_fill(pad.bool(), torch.finfo(torch.float32).min) + causal
        t = self.embeddings(ids)
        for l in range(c.text_layers):
            if l < c.text_layers - c.num_fuse:
                t = self.text_layer(t, l, m)
            else:
                t = self.text_layer(t, l, m, img=self.lin(x, f"cross_modal_att_layers.{l}") if l < 10 else x)
        return dict(text_feats=self.lin(t, "cross_modal_text_transform"), image_embeds=x)

    # -- heads (spec 2.1)
    def mlm(self, x):
        h = F.layer_norm(F.gelu(self.lin(x, "mlm_score.transform.dense")), (x.shape[-1],),
                         self.W["mlm_score.transform.LayerNorm.weight"], self.W["mlm_score.transform.LayerNorm.bias"], 1e-12)
        return F.linear(h, self.W["mlm_score.decoder.weight"]) + self.W["mlm_score.bias"]

    def classifier(self, x, p):  # vqa_classifier / nlvr2_classifier: Linear -> LN -> GELU -> Linear
        return self.lin(F.gelu(self.ln(self.lin(x, p + ".0"), p + ".1")), p + ".3")


# ------------------------------------------------------------------------------------------------ check
def check(d, tol):
    c = Config.from_fixture(json.load(open(os.path.join(d, "config.json"))))
    W, I, O = (read_safetensors(os.path.join(d, f + ".safetensors")) for f in ("model", "inputs", "outputs"))
    m = FiberRef(c, W)
    want = official_keys(c)
    keys_ok = set(want) == set(W) and all(shape_ok(W[k], s) for k, (s, _) in want.items())
    bufs = {k: v for k, v in random_weights(c).items() if want[k][1] in ("rel_index", "attn_mask", "position_ids")}
    bufs_ok = all(torch.equal(W[k], v) for k, v in bufs.items())
    img, ids, mask = I["image"], I["input_ids"], I["attention_mask"]
    R = {}
    with torch.no_grad():
        f = m.fused(img, ids, mask)
        R.update({"fused." + k: v for k, v in f.items()})
        R["fused.itm_logits"] = m.lin(f["cls_feats"], "itm_score.fc")
        R["fused.rank_score"] = m.lin(f["cls_feats"], "rank_output")
        R["fused.mlm_logits"] = m.mlm(f["text_feats"])
        R["fused.vqa_logits"] = m.classifier(f["cls_feats"], "vqa_classifier")
        di, dt = m.dual_image(img), m.dual_text(ids, mask)
        R.update({"dual." + k: v for k, v in {**di, **dt}.items()})
        R["dual.itc_logits_i2t"] = di["image_cls"] @ dt["text_cls"].t() / W["temp"]
        R["dual.itc_logits_t2i"] = dt["text_cls"] @ di["image_cls"].t() / W["temp"]
        cp = m.caption(img, ids, mask)
        R.update({"caption." + k: v for k, v in cp.items()})
        R["caption.logits"] = m.mlm(cp["text_feats"])
        R["nlvr2.cls_feats"] = torch.cat([f["cls_feats"], m.fused(I["nlvr2_image_1"], ids, mask)["cls_feats"]], -1)
        R["nlvr2.logits"] = m.classifier(R["nlvr2.cls_feats"], "nlvr2_classifier")
    missing = sorted(set(O) - set(R))
    diffs = {k: (R[k] - O[k]).abs().max().item() for k in sorted(O) if k in R}
    worst = max(diffs.values())
    ok = not missing and keys_ok and bufs_ok and worst <= tol
    return dict(check=d, ok=ok, max_abs_diff=worst, tol=tol, outputs_compared=len(diffs), outputs_missing=missing,
                state_dict_keys_match=keys_ok, buffers_match=bufs_ok, per_output=diffs)


# ------------------------------------------------------------------------------------------------ bench
def analytic_gflop(c, mode, B, L):
    """Matmul + conv FLOPs (2 per multiply-add) of one pass; softmax/LN/GELU/elementwise not counted."""
    D, F_, H = c.text_hidden, c.text_ffn, c.hidden_size
    f = 0
    if mode != "dual-text":
        f += 2 * c.grids[0] ** 2 * c.embed_dim * 3 * c.patch_size ** 2  # patch embedding
        for i, depth in enumerate(c.depths):
            C, n, N = c.dims[i], c.wins[i] ** 2, c.grids[i] ** 2
            for j in range(depth):
                f += 24 * N * C * C + 4 * N * n * C  # qkv, proj, MLP; window attention
                if mode == "fused" and c.i2t(i, j):  # image->text: text K/V, query, proj, attention
                    f += 4 * L * D * C + 4 * N * C * C + 4 * N * L * C
            if i < 3:
                f += 4 * N * C * C  # patch merging
        f += 2 * c.grids[3] ** 2 * c.dims[3] * H + 2 * H * H  # image transform + pooler
    if mode != "dual-image":
        f += c.text_layers * (8 * L * D * D + 4 * L * L * D + 4 * L * D * F_)
        if mode == "fused":
            for l in range(c.text_layers - c.num_fuse, c.text_layers):
                i = 2 if l < 10 else 3
                Ni, kv = c.grids[i] ** 2, c.dims[i]
                f += 4 * L * D * D + 4 * Ni * kv * D + 4 * L * Ni * D
        f += 2 * L * D * H + 2 * H * H  # text transform + pooler
    return B * f / 1e9


def count_flops(fn):
    """Count GEMM/conv FLOPs of fn() at the aten level (what actually runs)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = str(func.overloadpacket).split(".")[-1]
            if name in ("mm", "addmm", "bmm", "baddbmm"):
                a, b = args[-2:] if name in ("addmm", "baddbmm") else args[:2]
                Counter.total += 2 * math.prod(a.shape) * b.shape[-1]
            elif name == "convolution":
                Counter.total += 2 * out.numel() * math.prod(args[1].shape[1:])
            return out

    with Counter():
        fn()
    return Counter.total / 1e9


def bench(c, W, a):
    B, L, S = a.batch, a.text_len or c.text_len, c.image_size
    g = torch.Generator().manual_seed(a.seed)  # same inputs as the official-code harness
    img = torch.randn(B, 3, S, S, generator=g)
    ids = torch.randint(3, c.vocab_size - 1, (B, L), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones(B, L, dtype=torch.long)
    m = FiberRef(c, W)
    if a.bench == "train":  # the bench's train step: same loss as fiber-bench train
        params = [t.requires_grad_() for k, t in W.items()
                  if t.is_floating_point() and not k.endswith(("attn_mask", "relative_position_index"))]
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)

        def run():
            opt.zero_grad(set_to_none=True)
            loss = m.fused(img, ids, mask)["cls_feats"].pow(2).mean()
            loss.backward()
            opt.step()
            return loss
    else:
        run = {"fused": lambda: m.fused(img, ids, mask)["cls_feats"], "dual-image": lambda: m.dual_image(img)["image_cls"],
               "dual-text": lambda: m.dual_text(ids, mask)["text_cls"]}[a.bench]
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:  # reset the RSS high-water mark (Linux): the peak below covers the runs only (weights included)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    out = {}
    with torch.set_grad_enabled(a.bench == "train"):
        for _ in range(a.warmup):
            run()
        ts = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            run()
            ts.append(time.perf_counter() - t0)
        gflop = analytic_gflop(c, "fused" if a.bench == "train" else a.bench, B, L) * (3 if a.bench == "train" else 1)
        out.update(median_s=statistics.median(ts), min_s=min(ts), mean_s=statistics.mean(ts),
                   times_s=[round(t, 4) for t in ts], gflop=round(gflop, 3),
                   gflop_per_s=round(gflop / statistics.median(ts), 1))
        if a.flops and a.bench != "train":
            out["gflop_counted"] = round(count_flops(run), 3)
    out.update(peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               peak_rss_setup_mb=round(rss_model / 1024))
    return dict(batch=B, text_len=L, image_size=S, warmup=a.warmup, repeat=a.repeat, **out)


def main(a):
    if a.threads:
        torch.set_num_threads(a.threads)
    env = dict(threads=torch.get_num_threads(), openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
               openblas_coretype=os.environ.get("OPENBLAS_CORETYPE", "unset"),
               omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "unset"), torch=torch.__version__,
               loadavg=open("/proc/loadavg").read().split()[:3])
    if a.check:
        res = check(a.check, a.tol)
        print(json.dumps(dict(res, **env)))
        return 0 if res["ok"] else 1
    c = Config(**PRESETS[a.config])
    t0 = time.perf_counter()
    W = read_safetensors(a.weights) if a.weights else random_weights(c, a.seed, a.init)
    res = dict(impl="torch_fiber_ref", config=a.config, weights=a.weights or f"random(seed={a.seed}, init={a.init})",
               load_s=round(time.perf_counter() - t0, 2))
    if a.save_weights:
        write_safetensors(a.save_weights, W, {"source": f"torch_fiber_ref.py {res['weights']}", "config": a.config})
        res["saved"] = a.save_weights
    if a.bench:
        res.update(bench=a.bench, **bench(c, W, a))
    print(json.dumps(dict(res, **env)))
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
