// A 3-layer MLP differentiated by AddGradients against backpropagation
// derived by hand (in double) for a tiny fixed input.

#include <cmath>

#include "graph/autodiff.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "ops/losses.h"

namespace gradflow {
namespace {

using Matrix = std::vector<std::vector<double>>;

Matrix Random(int rows, int cols, double scale, uint64_t seed) {
  Rng rng(seed);
  Matrix m(rows, std::vector<double>(cols));
  for (auto& row : m)
    for (double& v : row) v = float(rng.Uniform(-scale, scale));  // representable in f32
  return m;
}

Tensor ToTensor(const Matrix& m) {
  Tensor t(DType::kF32, {int64_t(m.size()), int64_t(m[0].size())});
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < m[0].size(); ++j) t.data<float>()[i * m[0].size() + j] = float(m[i][j]);
  return t;
}

// z = a W + b
Matrix Affine(const Matrix& a, const Matrix& w, const std::vector<double>& b) {
  Matrix z(a.size(), std::vector<double>(w[0].size()));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < w[0].size(); ++j) {
      z[i][j] = b[j];
      for (size_t k = 0; k < w.size(); ++k) z[i][j] += a[i][k] * w[k][j];
    }
  return z;
}

TEST(AutodiffMlpTest, MatchesHandDerivedBackprop) {
  const int n = 2, d0 = 3, d1 = 4, d2 = 3, d3 = 2;
  Matrix x = Random(n, d0, 1.0, 1), t = Random(n, d3, 1.0, 2);
  Matrix w1 = Random(d0, d1, 0.8, 3), w2 = Random(d1, d2, 0.8, 4), w3 = Random(d2, d3, 0.8, 5);
  std::vector<double> b1 = Random(1, d1, 0.3, 6)[0], b2 = Random(1, d2, 0.3, 7)[0],
                      b3 = Random(1, d3, 0.3, 8)[0];

  // Forward: h1 = tanh(x W1 + b1), h2 = tanh(h1 W2 + b2), y = h2 W3 + b3,
  // L = mean over samples of mean over outputs of (y - t)^2.
  Matrix h1 = Affine(x, w1, b1), h2, y;
  for (auto& r : h1) for (double& v : r) v = std::tanh(v);
  h2 = Affine(h1, w2, b2);
  for (auto& r : h2) for (double& v : r) v = std::tanh(v);
  y = Affine(h2, w3, b3);
  // Backward by hand: dL/dy = 2 (y - t) / (n d3); through an affine layer
  // dW = aᵀ dz, db = Σ_rows dz, da = dz Wᵀ; through tanh dz = da (1 - h²).
  auto backward = [](const Matrix& a, const Matrix& dz, const Matrix& w, Matrix& dw,
                     std::vector<double>& db, Matrix& da) {
    dw.assign(w.size(), std::vector<double>(w[0].size(), 0));
    db.assign(w[0].size(), 0);
    da.assign(a.size(), std::vector<double>(w.size(), 0));
    for (size_t i = 0; i < a.size(); ++i)
      for (size_t j = 0; j < w[0].size(); ++j) {
        db[j] += dz[i][j];
        for (size_t k = 0; k < w.size(); ++k) {
          dw[k][j] += a[i][k] * dz[i][j];
          da[i][k] += dz[i][j] * w[k][j];
        }
      }
  };
  Matrix dy(n, std::vector<double>(d3));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d3; ++j) dy[i][j] = 2 * (y[i][j] - t[i][j]) / (n * d3);
  Matrix dw3, dh2, dw2, dh1, dw1, dx;
  std::vector<double> db3, db2, db1;
  backward(h2, dy, w3, dw3, db3, dh2);
  for (int i = 0; i < n; ++i) for (int j = 0; j < d2; ++j) dh2[i][j] *= 1 - h2[i][j] * h2[i][j];
  backward(h1, dh2, w2, dw2, db2, dh1);
  for (int i = 0; i < n; ++i) for (int j = 0; j < d1; ++j) dh1[i][j] *= 1 - h1[i][j] * h1[i][j];
  backward(x, dh1, w1, dw1, db1, dx);

  Graph g;
  Output xp = ops::Placeholder(g, "x", DType::kF32, {-1, d0});
  Output tp = ops::Placeholder(g, "t", DType::kF32, {-1, d3});
  auto var = [&](const char* name, const Matrix& m) { return ops::Constant(g, ToTensor(m), name); };
  auto vec = [&](const char* name, const std::vector<double>& v) {
    std::vector<float> f(v.begin(), v.end());
    return ops::Constant(g, Tensor::FromVector<float>({int64_t(v.size())}, f).value(), name);
  };
  Output W1 = var("W1", w1), W2 = var("W2", w2), W3 = var("W3", w3);
  Output B1 = vec("b1", b1), B2 = vec("b2", b2), B3 = vec("b3", b3);
  Output H1 = ops::Activation(g, ops::Dense(g, xp, W1, B1), "tanh");
  Output H2 = ops::Activation(g, ops::Dense(g, H1, W2, B2), "tanh");
  Output Y = ops::Dense(g, H2, W3, B3);
  Output loss = ops::MeanSquaredError(g, tp, Y);
  auto grads = AddGradients(g, loss, {W1, B1, W2, B2, W3, B3, xp});
  ASSERT_TRUE(grads.ok()) << grads.status();

  Session s(g);
  std::vector<ValueRef> fetches(grads->begin(), grads->end());
  auto plan = s.Compile(fetches);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{xp, ToTensor(x)}, {tp, ToTensor(t)}});
  ASSERT_TRUE(out.ok()) << out.status();

  constexpr double kTolerance = 1e-5;  // f32 arithmetic on values of order 1
  auto expect_matrix = [&](const Tensor& got, const Matrix& want, const char* what) {
    for (size_t i = 0; i < want.size(); ++i)
      for (size_t j = 0; j < want[0].size(); ++j)
        EXPECT_NEAR(got.data<float>()[i * want[0].size() + j], want[i][j], kTolerance)
            << what << "[" << i << "][" << j << "]";
  };
  expect_matrix((*out)[0], dw1, "dW1");
  expect_matrix((*out)[1], {db1}, "db1");
  expect_matrix((*out)[2], dw2, "dW2");
  expect_matrix((*out)[3], {db2}, "db2");
  expect_matrix((*out)[4], dw3, "dW3");
  expect_matrix((*out)[5], {db3}, "db3");
  expect_matrix((*out)[6], dx, "dx");
}

}  // namespace
}  // namespace gradflow
