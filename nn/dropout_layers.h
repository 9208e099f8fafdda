#ifndef GRADFLOW_NN_DROPOUT_LAYERS_H_
#define GRADFLOW_NN_DROPOUT_LAYERS_H_

// Dropout layers (Keras Dropout, AlphaDropout) and the chapter's Monte Carlo
// variants. Training plans drop units; evaluation and prediction plans do not
// (the phase is fixed when Sequential compiles its plans), except for the MC
// layers, which drop in every plan.

#include "nn/layers.h"

namespace gradflow::nn {

// Inverted dropout: in training each input unit is zeroed with probability
// `rate` and the others are scaled by 1 / (1 - rate). rate in [0, 1).
LayerPtr Dropout(double rate);

// Alpha dropout for SELU networks: keeps a standardized input's mean and
// variance (see ops::AlphaDropout). rate in [0, 1).
LayerPtr AlphaDropout(double rate);

// The chapter's MCDropout / MCAlphaDropout classes: dropout that stays on in
// inference plans, so Predict itself samples. Use them (instead of
// nn::PredictMC's training-mode passes) when the model also has layers that
// must stay in inference mode, such as batch normalization.
LayerPtr MCDropout(double rate);
LayerPtr MCAlphaDropout(double rate);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_DROPOUT_LAYERS_H_
