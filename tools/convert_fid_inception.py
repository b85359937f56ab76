#!/usr/bin/env python3
"""Convert pytorch-fid's FID Inception weights to the safetensors file sagan-eval reads.

    python3 tools/convert_fid_inception.py pt_inception-2015-12-05-6726825d.pth fid_inception.safetensors

The input is the release asset of pytorch-fid
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth),
a state dict of torchvision's Inception3 with pytorch-fid's FIDInceptionA/C/E blocks and a 1008-way fc,
itself ported from TensorFlow's 2015-12-05 Inception graph. Names are kept ("Conv2d_1a_3x3.conv.weight",
"Mixed_6b.branch7x7_2.bn.running_var", "fc.weight", ...): they are what models/quality/inception.cpp expects.
The batch-norm counters (num_batches_tracked) are dropped and every tensor is stored as float32.

Only torch is needed (to unpickle the .pth); the safetensors file is written directly, so the Python
safetensors package is not required. The result is checked for the 2048-d features / 1008 classes layout.
"""
import argparse
import json
import os
import struct
import sys
import tempfile

import torch


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    # Atomically, as the engine writes: a temporary file beside the target,
    # renamed over it once complete, so a full disk or a kill leaves either
    # the old file or none, never a cut one that sagan-eval would reject. A
    # link is written through to its target, which keeps its mode; a new
    # file gets the umask's.
    path = os.path.realpath(path)
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".tmp.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth", help="pt_inception-2015-12-05-6726825d.pth (pytorch-fid's FID weights)")
    ap.add_argument("out", help="output .safetensors")
    args = ap.parse_args()
    # Checked before the 95 MB load: the output must not replace the input
    # (the download) and its folder must take a new file.
    if os.path.exists(args.out) and os.path.exists(args.pth) and os.path.samefile(args.out, args.pth):
        sys.exit(f"convert_fid_inception: {args.out}: is the input file; give another output name")
    if os.path.isdir(args.out):
        sys.exit(f"convert_fid_inception: {args.out}: is a directory; give a file name")
    out_dir = os.path.dirname(args.out) or "."
    if not os.path.isdir(out_dir):
        sys.exit(f"convert_fid_inception: {args.out}: the folder {out_dir} does not exist; create it first")
    if not os.access(out_dir, os.W_OK | os.X_OK):
        sys.exit(f"convert_fid_inception: {args.out}: cannot write in the folder {out_dir}")

    try:
        sd = torch.load(args.pth, map_location="cpu")
    except FileNotFoundError:
        sys.exit(f"convert_fid_inception: {args.pth}: no such file")
    except Exception as e:  # not a pickle / zip of tensors
        sys.exit(f"convert_fid_inception: {args.pth}: not a PyTorch state dict ({type(e).__name__}: {e})")
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        sys.exit(f"convert_fid_inception: {args.pth}: holds a {type(sd).__name__}, not a state dict")
    tensors = {k: v for k, v in sd.items() if torch.is_tensor(v) and not k.endswith("num_batches_tracked")}
    problems = []
    if "fc.weight" not in tensors:
        problems.append("no fc.weight: not an Inception-v3 state dict")
    elif tuple(tensors["fc.weight"].shape) != (1008, 2048):
        problems.append("fc.weight is not 1008x2048 (torchvision's ImageNet Inception has 1000 classes: "
                        "use pytorch-fid's FID weights)")
    if any(k.startswith("AuxLogits.") for k in tensors):
        problems.append("the file has AuxLogits.* tensors: it is not pytorch-fid's FID Inception")
    # torchvision's Inception3(aux_logits=False, num_classes=1008), the
    # layout of pytorch-fid's file, less the BN counters: a file with fewer
    # tensors would convert, then fail in sagan-eval on the first missing one.
    count, values = len(tensors), sum(t.numel() for t in tensors.values())
    if not problems and (count, values) != (472, 23885392):
        problems.append(f"{count} tensors of {values} values, where pytorch-fid's FID Inception has 472 of "
                        "23885392: the file is incomplete or another network")
    if problems:
        sys.exit("convert_fid_inception: " + args.pth + ": " + "; ".join(problems))
    try:
        write_safetensors(args.out, tensors, {"source": args.pth, "network": "pytorch-fid FID Inception-v3"})
    except OSError as e:
        sys.exit(f"convert_fid_inception: {args.out}: cannot write: {e.strerror or e}")
    n = sum(t.numel() for t in tensors.values())
    print(f"convert_fid_inception: wrote {args.out}: {len(tensors)} tensors, {n} values")


if __name__ == "__main__":
    main()
