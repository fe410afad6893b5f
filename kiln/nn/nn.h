// Every layer, activation and loss of kiln::nn in one include.
#pragma once

#include "kiln/nn/activations.h"
#include "kiln/nn/attention.h"
#include "kiln/nn/containers.h"
#include "kiln/nn/conv_layers.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/losses.h"
#include "kiln/nn/module.h"
