// Cold start: process start to the first result computed on the default device. bench/core.py
// times this whole process beside `python -c "import torch; ..."`.
#include <iostream>

#include "kiln/kiln.h"

int main() {
  using namespace kiln;
  array x = arange(0, 1024, 1, float32);
  float v = (x * 2.0f + 1.0f).to_vector<float>()[1023];
  std::cout << default_device() << " " << v << "\n";
  return v == 2047.0f ? 0 : 1;
}
