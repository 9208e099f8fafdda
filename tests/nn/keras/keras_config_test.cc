// nn/keras_config.h: Keras compile configs as Keras 3 and tf.keras 2.x write
// them map onto gradflow's described losses, optimizers and schedules, and
// back; what Keras 3 cannot express is refused when saving.

#include "nn/keras_config.h"

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace gradflow::nn {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

absl::StatusOr<CompileOptions> Read(const std::string& text, const std::string& version = "3.10.0") {
  return keras_config::ReadCompile(Json::parse(text), version, {"dense"}, "compile", nullptr);
}

TEST(KerasCompileConfigTest, LossObjectsKeepTheirSettings) {
  auto o = Read(R"({"loss": {"module": "keras.losses", "class_name": "CategoricalCrossentropy",
                             "config": {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                                        "from_logits": false, "label_smoothing": 0.1, "axis": -1},
                             "registered_name": null},
                    "metrics": ["accuracy"], "optimizer": {"class_name": "SGD", "config": {}}})");
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_TRUE(o->loss_config.has_value());
  EXPECT_DOUBLE_EQ(std::get<losses::CategoricalCrossentropy>(*o->loss_config).label_smoothing, 0.1);
}

TEST(KerasCompileConfigTest, LossAxisOtherThanTheLastIsRefused) {
  auto o = Read(R"({"loss": {"class_name": "MeanSquaredError", "config": {"axis": 0}},
                    "optimizer": {"class_name": "SGD", "config": {}}})");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("'axis'"));
}

TEST(KerasCompileConfigTest, NadamFollowsTheSchedulOfTheKerasThatWroteIt) {
  const std::string nadam = R"({"loss": "mse", "optimizer_config": {"class_name": "Nadam",
      "config": {"name": "Nadam", "learning_rate": 0.002, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999,
                 "epsilon": 1e-07}}})";
  auto tf2 = Read(nadam, "2.4.0");
  auto keras3 = Read(nadam, "3.10.0");
  ASSERT_TRUE(tf2.ok() && keras3.ok());
  EXPECT_EQ(std::get<optimizers::Nadam>(tf2->optimizer).schedule_decay, optimizers::kKeras2NadamScheduleDecay);
  EXPECT_EQ(std::get<optimizers::Nadam>(keras3->optimizer).schedule_decay, 1.0);
  EXPECT_DOUBLE_EQ(std::get<optimizers::Nadam>(tf2->optimizer).learning_rate, 0.002);
}

TEST(KerasCompileConfigTest, TfKerasDecayIsAnInverseTimeSchedule) {
  auto o = Read(R"({"loss": "mse", "optimizer_config": {"class_name": "SGD",
      "config": {"name": "SGD", "lr": 0.01, "decay": 1e-4, "momentum": 0.9, "nesterov": true}}})", "2.4.0");
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_TRUE(o->learning_rate_schedule.has_value());
  const auto& s = std::get<optimizers::InverseTimeDecay>(*o->learning_rate_schedule);
  EXPECT_DOUBLE_EQ(s.initial_learning_rate, 0.01);
  EXPECT_DOUBLE_EQ(s.decay_steps, 1);
  EXPECT_DOUBLE_EQ(s.decay_rate, 1e-4);
  EXPECT_DOUBLE_EQ(std::get<optimizers::SGD>(o->optimizer).momentum, 0.9);
}

TEST(KerasCompileConfigTest, ScheduleObjectsAndClippingAreRead) {
  auto o = Read(R"({"loss": "mse", "optimizer": {"module": "keras.optimizers", "class_name": "Adam",
      "config": {"name": "adam", "learning_rate": {"module": "keras.optimizers.schedules",
                 "class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.01, "decay_steps": 100,
                 "decay_rate": 0.5, "staircase": true, "name": "ExponentialDecay"}, "registered_name": null},
                 "clipnorm": 1.5, "use_ema": false, "beta_1": 0.8}, "registered_name": null}})");
  ASSERT_TRUE(o.ok()) << o.status();
  const auto& s = std::get<optimizers::ExponentialDecay>(*o->learning_rate_schedule);
  EXPECT_TRUE(s.staircase);
  EXPECT_DOUBLE_EQ(s.decay_rate, 0.5);
  ASSERT_TRUE(o->clip.has_value());
  EXPECT_DOUBLE_EQ(o->clip->threshold, 1.5);
  EXPECT_DOUBLE_EQ(std::get<optimizers::Adam>(o->optimizer).beta_1, 0.8);
}

TEST(KerasCompileConfigTest, UnknownOptimizerClassListsTheKnownOnes) {
  auto o = Read(R"({"loss": "mse", "optimizer": {"class_name": "Adafactor", "config": {}}})");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("Adafactor"));
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("Adam"));
}

Sequential Compiled(CompileOptions options) {
  Sequential model({Flatten(Shape{3}), Dense(2, {.activation = "sigmoid"})});
  EXPECT_TRUE(model.Compile(std::move(options)).ok());
  return model;
}

TEST(KerasCompileConfigTest, WritesWhatItReads) {
  Sequential model = Compiled({.loss_config = losses::BinaryCrossentropy{.label_smoothing = 0.2},
                               .optimizer = optimizers::Adam{.learning_rate = 0.003},
                               .learning_rate_schedule = optimizers::PolynomialDecay{.decay_steps = 10, .cycle = true}});
  auto json = keras_config::WriteCompile(model, /*legacy_h5=*/false);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ((*json)["optimizer"]["config"]["learning_rate"]["class_name"], "PolynomialDecay");
  EXPECT_EQ((*json)["loss"]["config"]["name"], "binary_crossentropy");
  EXPECT_FALSE((*json)["loss"]["config"].contains("keras2_log_epsilon"));
  auto back = keras_config::ReadCompile(*json, "3.10.0", {"dense"}, "compile", nullptr);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_DOUBLE_EQ(std::get<losses::BinaryCrossentropy>(*back->loss_config).label_smoothing, 0.2);
  EXPECT_TRUE(std::get<optimizers::PolynomialDecay>(*back->learning_rate_schedule).cycle);
}

TEST(KerasCompileConfigTest, WhatKeras3CannotExpressIsRefused) {
  Sequential nadam2 = Compiled({.loss = "mse",
                                .optimizer = optimizers::Nadam{.schedule_decay = optimizers::kKeras2NadamScheduleDecay}});
  auto a = keras_config::WriteCompile(nadam2, false);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("schedule_decay"));
  Sequential bce2 = Compiled({.loss_config = losses::BinaryCrossentropy{.keras2_log_epsilon = true}});
  EXPECT_THAT(std::string(keras_config::WriteCompile(bce2, false).status().message()),
              HasSubstr("keras2_log_epsilon"));
  Sequential power = Compiled({.loss = "mse", .learning_rate_schedule = optimizers::PowerSchedule{.decay_steps = 10}});
  EXPECT_THAT(std::string(keras_config::WriteCompile(power, false).status().message()),
              HasSubstr("'power' has no Keras class"));
}

}  // namespace
}  // namespace gradflow::nn
