// One direction of a GRU layer over a whole sequence, with its backward pass through time,
// for skseqsleep.nn.cells.GRU on the CPU (skseqsleep/nn/_gru_ext.py builds and wraps it).
//
// torch.nn.GRU's equations, zero initial state: with gi = W_ih x_t + b_ih (computed by the
// caller for all steps at once) and gh = W_hh h + b_hh,
//   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
//   h' = (h - n) * z + n.
// Per step this makes one matrix product and two vectorised ATen calls (sigmoid); the gate
// arithmetic runs in plain loops. tanh(a) is computed as 2 sigmoid(2a) - 1, which ATen
// evaluates several times faster than tanh on the CPU. The backward pass saves r, z, n and
// gh_n per step and needs one matrix product per step plus one for the recurrent weights'
// gradient over all steps.

#include <torch/extension.h>

#include <vector>

namespace {

template <typename T>
void forward_impl(const at::Tensor& gi, const at::Tensor& w_hh_t, const at::Tensor& b_hh,
                  bool reverse, at::Tensor& hs, at::Tensor& saved, bool save) {
  // saved is (S, 4, N, H) when save, else one step's scratch (1, 4, N, H): planes r, z, n
  // and gh_n; the sigmoid calls work in place on the r/z planes and on the n plane.
  const int64_t N = gi.size(0), S = gi.size(1), H = hs.size(2);
  auto h = at::zeros({N, H}, gi.options());
  const T* gip = gi.data_ptr<T>();
  T* hp = h.data_ptr<T>();
  for (int64_t k = 0; k < S; ++k) {
    const int64_t t = reverse ? S - 1 - k : k;
    const at::Tensor gh = at::addmm(b_hh, h, w_hh_t);
    const at::Tensor step = saved[save ? t : 0];
    T* r = step.data_ptr<T>();
    T* z = r + N * H;
    T* n = z + N * H;
    T* q = n + N * H;
    const T* ghp = gh.data_ptr<T>();
    for (int64_t i = 0; i < N; ++i) {
      const T* __restrict__ g = gip + (i * S + t) * 3 * H;
      const T* __restrict__ e = ghp + i * 3 * H;
      T* __restrict__ ri = r + i * H;
      T* __restrict__ zi = z + i * H;
      T* __restrict__ qi = q + i * H;
      for (int64_t j = 0; j < H; ++j) ri[j] = g[j] + e[j];
      for (int64_t j = 0; j < H; ++j) zi[j] = g[H + j] + e[H + j];
      for (int64_t j = 0; j < H; ++j) qi[j] = e[2 * H + j];
    }
    step.narrow(0, 0, 2).sigmoid_();
    for (int64_t i = 0; i < N; ++i) {
      const T* __restrict__ g = gip + (i * S + t) * 3 * H + 2 * H;
      const T* __restrict__ ri = r + i * H;
      const T* __restrict__ qi = q + i * H;
      T* __restrict__ ni = n + i * H;
      for (int64_t j = 0; j < H; ++j) ni[j] = T(2) * (g[j] + ri[j] * qi[j]);
    }
    step[2].sigmoid_();
    T* __restrict__ out = hs.data_ptr<T>() + t * N * H;
    for (int64_t i = 0; i < N * H; ++i) {
      const T nv = T(2) * n[i] - T(1);
      n[i] = nv;
      const T hn = (hp[i] - nv) * z[i] + nv;
      hp[i] = hn;
      out[i] = hn;
    }
  }
}

// One row of one step of the backward pass: the gate gradients (into dgi and dgh) and the
// part of the state gradient that flows through z (into dh; the caller adds dgh W_hh).
template <typename T>
inline void backward_row(const T* __restrict__ r, const T* __restrict__ z,
                         const T* __restrict__ n, const T* __restrict__ q,
                         const T* __restrict__ hv, const T* __restrict__ gv,
                         T* __restrict__ dv, T* __restrict__ a, T* __restrict__ b, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T d = gv[j] + dv[j];
    const T dn = d * (T(1) - z[j]) * (T(1) - n[j] * n[j]);
    const T dz = d * (hv[j] - n[j]) * z[j] * (T(1) - z[j]);
    const T dr = dn * q[j] * r[j] * (T(1) - r[j]);
    dv[j] = d * z[j];
    b[j] = dr;
    b[H + j] = dz;
    b[2 * H + j] = dn;
    a[j] = dr;
    a[H + j] = dz;
    a[2 * H + j] = dn * r[j];
  }
}

template <typename T>
void backward_impl(const at::Tensor& dhs, const at::Tensor& hs, const at::Tensor& saved,
                   const at::Tensor& w_hh, bool reverse, at::Tensor& dgi, at::Tensor& dgh) {
  const int64_t S = hs.size(0), N = hs.size(1), H = hs.size(2);
  auto dh = at::zeros({N, H}, hs.options());
  auto zero = at::zeros({N, H}, hs.options());
  T* dhp = dh.data_ptr<T>();
  for (int64_t k = S - 1; k >= 0; --k) {
    const int64_t t = reverse ? S - 1 - k : k;
    const int64_t tp = reverse ? t + 1 : t - 1;  // the step processed before t
    const T* hprev = k > 0 ? hs.data_ptr<T>() + tp * N * H : zero.data_ptr<T>();
    const T* sv = saved.data_ptr<T>() + t * 4 * N * H;
    const T* go = dhs.data_ptr<T>() + t * N * H;
    T* dg = dgh.data_ptr<T>() + t * N * 3 * H;
    T* di = dgi.data_ptr<T>() + t * 3 * H;
    for (int64_t i = 0; i < N; ++i) {
      backward_row<T>(sv + i * H, sv + (N + i) * H, sv + (2 * N + i) * H,
                      sv + (3 * N + i) * H, hprev + i * H, go + i * H, dhp + i * H,
                      dg + i * 3 * H, di + i * S * 3 * H, H);
    }
    if (k > 0) dh.addmm_(dgh[t], w_hh);
  }
}

}  // namespace

// gi (N, S, 3H) contiguous; w_hh (3H, H); b_hh (3H). Returns the hidden states (S, N, H),
// time-major, and, if save, the tensors the backward pass needs (S, 4, N, H): r, z, n, gh_n.
std::vector<at::Tensor> gru_forward(const at::Tensor& gi, const at::Tensor& w_hh,
                                    const at::Tensor& b_hh, bool reverse, bool save) {
  TORCH_CHECK(gi.dim() == 3 && gi.is_contiguous(), "gi must be a contiguous (N, S, 3H) tensor");
  const int64_t N = gi.size(0), S = gi.size(1), H = w_hh.size(1);
  TORCH_CHECK(gi.size(2) == 3 * H && w_hh.size(0) == 3 * H && b_hh.numel() == 3 * H,
              "gi, w_hh and b_hh disagree on the hidden size");
  auto hs = at::empty({S, N, H}, gi.options());
  auto saved = at::empty({save ? S : 1, 4, N, H}, gi.options());
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "gru_forward", [&] {
    forward_impl<scalar_t>(gi, w_hh.t(), b_hh, reverse, hs, saved, save);
  });
  return {hs, save ? saved : at::Tensor()};
}

// dhs (S, N, H): gradient of the hidden states. Returns dgi (N, S, 3H) and, if weights,
// dw_hh and db_hh (else undefined tensors: the recurrent weights are frozen).
std::vector<at::Tensor> gru_backward(const at::Tensor& dhs, const at::Tensor& hs,
                                     const at::Tensor& saved, const at::Tensor& w_hh,
                                     bool reverse, bool weights) {
  const int64_t S = hs.size(0), N = hs.size(1), H = hs.size(2);
  auto g = dhs.contiguous();
  auto dgi = at::empty({N, S, 3 * H}, hs.options());
  auto dgh = at::empty({S, N, 3 * H}, hs.options());
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_backward", [&] {
    backward_impl<scalar_t>(g, hs, saved, w_hh, reverse, dgi, dgh);
  });
  if (!weights) return {dgi, at::Tensor(), at::Tensor()};
  // dW_hh = sum over steps of dgh_t^T h_prev(t); the first processed step has h_prev = 0.
  const at::Tensor dg_rest = reverse ? dgh.narrow(0, 0, S - 1) : dgh.narrow(0, 1, S - 1);
  const at::Tensor h_prev = reverse ? hs.narrow(0, 1, S - 1) : hs.narrow(0, 0, S - 1);
  auto dw = at::mm(dg_rest.reshape({-1, 3 * H}).t(), h_prev.reshape({-1, H}));
  auto db = dgh.sum({0, 1});
  return {dgi, dw, db};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gru_forward", &gru_forward, "GRU direction over a sequence (forward)");
  m.def("gru_backward", &gru_backward, "GRU direction over a sequence (backward)");
}
