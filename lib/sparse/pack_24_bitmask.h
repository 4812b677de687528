// compressed-tensors `sparse-24-bitmask` tensors of one 2:4-sparse, unquantized linear weight, as
// written by compressed-tensors 0.9.0 to 0.14.0 (src/compressed_tensors/compressors/
// sparse_compressors/sparse_24_bitmask.py: Sparse24BitMaskTensor.dict, sparse24_bitmask_compress,
// sparse24_bitmask_decompress, get_24_bytemasks; utils/helpers.py: pack_bitmasks,
// unpack_bitmasks; the same layout in every tag from 0.9.0 to 0.14.0, removed in 0.15.0).
//
// `<name>.weight` [rows, cols] is replaced by three tensors:
//   <name>.compressed  [rows, cols/2] in the weight's dtype: the kept values in row-major order
//                      (tensor[bytemask].reshape(rows, cols // 2)), so row r holds row r's kept
//                      values in column order.
//   <name>.bitmask     [rows, ceil(cols/8)] uint8: column j of a row is bit j % 8 of byte j / 8,
//                      least significant bit first (numpy.packbits(axis=-1, bitorder="little"));
//                      the bits past `cols` in a row's last byte are 0.
//   <name>.shape       [2, 1] int64: rows, cols (torch.tensor(shape).reshape(-1, 1)).
//
// Which columns count as kept: upstream reads no mask, it recomputes one from the values,
// |W|.view(-1, 4).topk(2, dim=1) on the CPU. In a group of four holding two nonzero values those
// two are kept: the pruning mask. In a group holding fewer (a kept weight that is exactly ±0),
// topk breaks the tie among the zeros, and PyTorch's CPU topk (topk_impl_loop: std::nth_element
// with `>` over (|x|, column) pairs, libstdc++ in the Linux wheels) then keeps
//   no nonzero: columns 2, 3     only column 0: 0, 2     only column 1: 1, 3
//   only column 2: 2, 3          only column 3: 2, 3     (columns within the group)
// The writer reproduces that choice so its bytes match upstream's there too: the bitmask may then
// differ from the caller's mask in such a group, and the stored values are the zeros found at the
// chosen columns. Decoding gives the weight back exactly, up to the sign of a zero.
//
// Upstream groups four consecutive elements of the flattened tensor, which straddle rows when
// cols % 4 != 0; presso writes and reads only cols % 4 == 0, where the groups lie within rows.
// FP8 weights (an int8 view upstream) are not handled here.
#pragma once

#include <torch/types.h>

#include <string>

namespace presso {

struct Sparse24Packed {
  torch::Tensor compressed;  // [rows, cols/2], the weight's dtype
  torch::Tensor bitmask;     // [rows, ceil(cols/8)] uint8, LSB first
  torch::Tensor shape;       // [2, 1] int64: rows, cols
};

// weight [rows, cols] floating point (fp32, fp16, bf16, as it will be stored), zero wherever
// mask [rows, cols] bool is false; mask keeps exactly 2 of every 4 consecutive columns of each
// row. InternalError naming the tensor when the shapes disagree, cols % 4 != 0, the mask is not
// 2:4 or a pruned weight is not zero. Results lie on the weight's device.
Sparse24Packed pack_sparse24_bitmask(const torch::Tensor& weight, const torch::Tensor& mask,
                                     const std::string& tensor_name = "");

// The dense weight [rows, cols] in compressed's dtype, zero at the pruned columns, from the three
// tensors of a checkpoint. shape may be [2, 1] (as written) or [2], int64 or int32. Bits past
// `cols` in a bitmask row are ignored, as numpy.unpackbits(count=cols) ignores them. UserError
// naming the tensor for malformed input: a shape that is not two positive sizes with cols % 4 == 0,
// compressed not floating point [rows, cols/2], bitmask not uint8 [rows, ceil(cols/8)], or a
// group of four columns whose bits do not keep exactly two.
torch::Tensor unpack_sparse24_bitmask(const torch::Tensor& compressed, const torch::Tensor& bitmask,
                                      const torch::Tensor& shape,
                                      const std::string& tensor_name = "");

}  // namespace presso
