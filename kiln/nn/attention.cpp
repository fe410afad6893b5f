#include "kiln/nn/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "kiln/fast_attention.h"
#include "kiln/ops.h"
#include "kiln/primitives_attention.h"
#include "kiln/random.h"

namespace kiln::nn {

namespace {

constexpr const char* kOp = "[MultiHeadAttention]";

// softmax(q k^T * scale + mask) v as separate operations, with the fused kernel's conventions:
// a boolean mask is true where attention is allowed, and a row that sees no key gives zeros.
array attend_composed(const array& q, const array& k, const array& v, float scale, const std::optional<array>& mask,
                      bool causal, const StreamOrDevice& s) {
  const int64_t Lq = q.shape(2), Lk = k.shape(2);
  array scores = multiply(matmul(q, swapaxes(k, -1, -2, s), s), scalar_like(scale, q), s);
  const array minus_inf = scalar_like(-std::numeric_limits<double>::infinity(), scores);
  if (mask) {
    scores = mask->dtype() == bool_ ? where(*mask, scores, minus_inf, s) : add(scores, astype(*mask, q.dtype(), s), s);
  }
  if (causal) {
    array rows = expand_dims(arange(static_cast<double>(Lk - Lq), static_cast<double>(Lk), 1.0, int64, s), 1, s);
    array cols = arange(static_cast<double>(Lk), int64, s);
    scores = where(less_equal(cols, rows, s), scores, minus_inf, s);
  }
  // Shifting a row that is all -inf by 0 instead of its maximum gives exp = 0 and no NaN.
  array top = max(scores, -1, true, s);
  array shift = where(equal(top, minus_inf, s), scalar_like(0.0, top), top, s);
  array p = exp(subtract(scores, shift, s), s);
  array denom = sum(p, -1, true, s);
  denom = where(equal(denom, scalar_like(0.0, denom), s), scalar_like(1.0, denom), denom, s);
  return divide(matmul(p, v, s), denom, s);
}

void check_mask_dtype(const char* what, const array& m) {
  if (m.dtype() != bool_ && !is_floating(m.dtype())) {
    fail<TypeError>(kOp, " ", what, " must be bool or floating, got ", m.dtype());
  }
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(int64_t embed_dim, int64_t num_heads, bool bias, Dtype dtype)
    : embed_(embed_dim), heads_(num_heads) {
  if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0) {
    fail<ValueError>(kOp, " embed_dim (", embed_dim, ") must be a positive multiple of num_heads (", num_heads, ")");
  }
  if (!is_floating(dtype)) fail<TypeError>(kOp, " parameters must have a floating dtype, not ", dtype);
  // Xavier-uniform over (3E, E): bound sqrt(6 / (fan_in + fan_out)).
  double bound = std::sqrt(6.0 / static_cast<double>(4 * embed_dim));
  register_parameter("in_proj_weight", random::uniform(-bound, bound, {3 * embed_dim, embed_dim}, dtype));
  if (bias) register_parameter("in_proj_bias", zeros({3 * embed_dim}, dtype));
  out_proj_ = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias, dtype));
  if (bias) out_proj_->update({{"bias", zeros({embed_dim}, dtype)}});
}

array MultiHeadAttention::operator()(const array& query, const array& key, const array& value,
                                     const std::optional<array>& attn_mask, bool causal,
                                     const std::optional<array>& key_padding_mask, StreamOrDevice s) const {
  const int nd = query.ndim();
  if ((nd != 2 && nd != 3) || key.ndim() != nd || value.ndim() != nd) {
    fail<ValueError>(kOp, " query, key and value must all be (B, L, E) or all (L, E), got ", query.shape(), ", ",
                     key.shape(), " and ", value.shape());
  }
  for (const array* x : {&query, &key, &value}) {
    if (x->shape().back() != embed_) {
      fail<ValueError>(kOp, " expects ", embed_, " features in the last axis, got ", query.shape(), ", ", key.shape(),
                       " and ", value.shape());
    }
    if (!is_floating(x->dtype())) fail<TypeError>(kOp, " inputs must be floating, got ", x->dtype());
  }
  const bool batched = nd == 3;
  if (key.shape(-2) != value.shape(-2) || (batched && (key.shape(0) != query.shape(0) || value.shape(0) != query.shape(0)))) {
    fail<ValueError>(kOp, " key and value must have the same length, and the batch size of query, got ",
                     query.shape(), ", ", key.shape(), " and ", value.shape());
  }
  const int64_t B = batched ? query.shape(0) : 1, Lq = query.shape(-2), Lk = key.shape(-2);
  const int64_t E = embed_, H = heads_, D = E / H;
  if (causal && Lq > Lk) {
    fail<ValueError>(kOp, " causal attention needs Lq <= Lk (queries at the end of the keys), got Lq ", Lq,
                     " and Lk ", Lk);
  }

  // The masks as one mask of the fused kernel: boolean (true = attend) when both are boolean,
  // else additive.
  std::vector<array> masks;
  if (attn_mask) {
    check_mask_dtype("attn_mask", *attn_mask);
    const Shape& ms = attn_mask->shape();
    if (ms == Shape{Lq, Lk}) {
      masks.push_back(*attn_mask);
    } else if (ms == Shape{B * H, Lq, Lk} && (batched || ms[0] == H)) {
      masks.push_back(reshape(*attn_mask, {B, H, Lq, Lk}, s));
    } else {
      fail<ValueError>(kOp, " attn_mask must have shape ", Shape{Lq, Lk}, " or ",
                       batched ? Shape{B * H, Lq, Lk} : Shape{H, Lq, Lk}, ", got ", ms);
    }
  }
  if (key_padding_mask) {
    check_mask_dtype("key_padding_mask", *key_padding_mask);
    Shape want = batched ? Shape{B, Lk} : Shape{Lk};
    if (key_padding_mask->shape() != want) {
      fail<ValueError>(kOp, " key_padding_mask must have shape ", want, ", got ", key_padding_mask->shape());
    }
    masks.push_back(reshape(*key_padding_mask, {B, 1, 1, Lk}, s));
  }

  // Projections: one product for self-attention, three otherwise.
  const array& w = parameter("in_proj_weight");
  const bool has_bias = has_parameter("in_proj_bias");
  auto rows = [&](const array& a, int i) { return slice(a, {i * E}, {(i + 1) * E}, {}, s); };
  auto lanes = [&](const array& a, int i) {
    Shape start(a.ndim(), 0), stop = a.shape();
    start.back() = i * E;
    stop.back() = (i + 1) * E;
    return slice(a, start, stop, {}, s);
  };
  array xq = batched ? query : expand_dims(query, 0, s);
  array xk = batched ? key : expand_dims(key, 0, s);
  array xv = batched ? value : expand_dims(value, 0, s);
  std::vector<array> qkv;
  if (query.is_same(key) && key.is_same(value)) {
    array all = matmul(xq, transpose(w, s), s);
    if (has_bias) all = add(all, parameter("in_proj_bias"), s);
    for (int i = 0; i < 3; ++i) qkv.push_back(lanes(all, i));
  } else {
    const array* xs[] = {&xq, &xk, &xv};
    for (int i = 0; i < 3; ++i) {
      array p = matmul(*xs[i], transpose(rows(w, i), s), s);
      if (has_bias) p = add(p, rows(parameter("in_proj_bias"), i), s);
      qkv.push_back(p);
    }
  }
  // (B, L, E) -> (B, H, L, D), a view the attention reads in place.
  auto heads = [&](const array& a) { return transpose(reshape(a, {B, a.shape(1), H, D}, s), {0, 2, 1, 3}, s); };
  array q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);
  const Dtype t = q.dtype();

  std::optional<array> mask;
  bool all_bool = true;
  for (const auto& m : masks) all_bool = all_bool && m.dtype() == bool_;
  for (const auto& m : masks) {
    array part = all_bool ? logical_not(m, s)
                          : (m.dtype() == bool_
                                 ? where(m, array(-std::numeric_limits<float>::infinity()), array(0.0f), s)
                                 : m);
    if (part.dtype() != bool_) part = astype(part, t, s);
    mask = !mask ? part : (all_bool ? logical_and(*mask, part, s) : add(*mask, part, s));
  }

  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  const bool fused = (t == float32 || t == float16 || t == bfloat16) && D <= kMaxAttentionHeadDim;
  array o = fused ? fast::scaled_dot_product_attention(q, k, v, scale, mask, causal, s)
                  : attend_composed(q, k, v, scale, mask, causal, s);
  o = reshape(transpose(o, {0, 2, 1, 3}, s), {B, Lq, E}, s);
  o = (*out_proj_)(o, s);
  return batched ? o : squeeze(o, {0}, s);
}

}  // namespace kiln::nn
