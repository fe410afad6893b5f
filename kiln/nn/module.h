// The base of kiln's neural-network layers, in the spirit of MLX's nn.Module: a module owns named
// parameters (arrays) and named child modules, and exposes them as one flat map with dotted names
// ("model.layers.0.self_attn.q_proj.weight"), the naming Hugging Face checkpoints use, so that
// loading a checkpoint is a name-for-name match.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kiln/array.h"

namespace kiln::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Adds a parameter of this module. Names are non-empty, have no '.', and are unique among
  // this module's parameters and children; a violation throws ValueError.
  void register_parameter(const std::string& name, array value);
  // Adds a child module (names as for parameters). Returns the child, for members:
  // `q_proj = register_module("q_proj", std::make_shared<Linear>(d, d));`
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }
  // Adds children "name.0", "name.1", ... (a list of layers).
  template <class M>
  std::vector<std::shared_ptr<M>> register_modules(const std::string& name, std::vector<std::shared_ptr<M>> children) {
    add_child_list(name, std::vector<std::shared_ptr<Module>>(children.begin(), children.end()));
    return children;
  }

  // This module's own parameter (not a child's); ValueError when absent.
  const array& parameter(const std::string& name) const;
  bool has_parameter(const std::string& name) const { return params_.count(name) != 0; }
  // The direct children in registration order; list entries appear as "name.i".
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  // Every parameter of this module and its descendants, by dotted name.
  std::map<std::string, array> parameters() const;
  // Replaces parameters by dotted name (no shape or dtype check). An unknown name throws
  // ValueError naming it, before anything changes.
  void update(const std::map<std::string, array>& params);
  // Loads a checkpoint. Strict: every parameter must be present and nothing else; otherwise
  // names that match are loaded and the rest ignored. Shapes must always match. With `dtype`,
  // floating weights are cast to it (others load as stored). Every problem found is reported in
  // one ValueError (all missing and unexpected names, every shape mismatch), before anything
  // changes.
  void load_weights(const std::map<std::string, array>& weights, bool strict = true,
                    std::optional<Dtype> dtype = std::nullopt);
  // The number of scalars in all parameters.
  int64_t num_parameters() const;
  // Casts every floating parameter to `dtype` (a floating type; TypeError otherwise).
  void to(Dtype dtype);
  // Training mode (PyTorch's module.training): layers such as Dropout act only in it. A new
  // module starts in training mode, as in PyTorch. train(mode) sets this module and all its
  // descendants.
  bool training() const { return training_; }
  void train(bool mode = true);
  // Inference mode for the whole tree (train(false)), and evaluates every parameter (e.g. after
  // loading or casting, so that later graphs start from data).
  void eval();

  // The layer as a function of one array, so that a container (Sequential) can call any child.
  // The single-input layers override it; the default throws TypeError naming the module's type.
  virtual array forward(const array& x) const;
  // The module's C++ type, readable ("kiln::nn::Linear"), for messages.
  std::string type_name() const;

 protected:
  // Replaces one of this module's own parameters.
  void set_parameter(const std::string& name, array value);

 private:
  void check_name(const std::string& name, bool allow_index) const;
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void add_child_list(const std::string& name, const std::vector<std::shared_ptr<Module>>& children);
  struct Slot {
    std::string name;  // dotted
    Module* owner;
    std::string local;
  };
  // Every parameter of the tree, in registration order, depth first.
  void collect(const std::string& prefix, std::vector<Slot>& out) const;

  std::vector<std::string> param_order_;
  std::map<std::string, array> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace kiln::nn
