// The U-Net's layers as one list, in the order of the forward pass: the one description that the
// eager modules (unet.cpp) are built from and run through, that the fused plan (fused_unet.cpp)
// builds its primitives from, and that names every weight (unet_tensor_specs, hence model files and
// the Python twin, which loads them strictly). Change the architecture here and all follow.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.h"

namespace ddim {

enum class LayerKind {
  InputConv,       // 1x1 convolution, channels -> widths[0]
  JoinEmbeddings,  // concatenates the noise embedding (and a class model's class vector), each repeated over H x W
  Residual,        // conv1x1(x) + conv3x3_b(swish(conv3x3_a(batchnorm(x))))
  Pool,            // 2x2 average pooling
  Upsample,        // bilinear 2x, half-pixel centres
  OutputConv,      // 1x1 convolution, widths[0] -> channels
};

struct UNetLayer {
  LayerKind kind;
  // The prefix of the layer's weights ("input_conv", "down.0.blocks.1", "middle_a"); JoinEmbeddings:
  // "class_embedding" for class models, else empty; Pool and Upsample: empty.
  std::string name;
  int64_t in_channels = 0;   // of the layer's input; a Residual that takes a skip: after joining it
  int64_t out_channels = 0;
  int64_t size = 0;          // height = width of the input
  bool keeps_skip = false;   // a Residual of a down level: its output is pushed onto the skips
  bool takes_skip = false;   // a Residual of an up level: its input is concat(x, the last skip), popped
};

// Every layer of a U-Net of `config` (validated), in forward order.
std::vector<UNetLayer> unet_layers(const ModelConfig& config);

}  // namespace ddim
