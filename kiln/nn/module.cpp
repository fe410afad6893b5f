#include "kiln/nn/module.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <set>
#include <sstream>
#include <typeinfo>

#include "kiln/eval.h"
#include "kiln/ops_elementwise.h"

namespace kiln::nn {

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

bool is_index(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void Module::check_name(const std::string& name, bool allow_index) const {
  if (name.empty()) fail<ValueError>("[Module] a parameter or module name cannot be empty");
  // A list entry "layers.3" is the only dotted name, so that dotted paths stay unambiguous.
  auto dot = name.find('.');
  if (dot != std::string::npos && !(allow_index && dot > 0 && is_index(name.substr(dot + 1)))) {
    fail<ValueError>("[Module] name '", name, "' cannot contain '.'");
  }
  // "layers" and "layers.0" clash too: their dotted paths would overlap.
  auto clash = [&](const std::string& other) {
    auto prefix_of = [](const std::string& a, const std::string& b) {
      return b.size() > a.size() && b.compare(0, a.size(), a) == 0 && b[a.size()] == '.';
    };
    return other == name || prefix_of(other, name) || prefix_of(name, other);
  };
  bool taken = std::any_of(params_.begin(), params_.end(), [&](const auto& p) { return clash(p.first); }) ||
               std::any_of(children_.begin(), children_.end(), [&](const auto& c) { return clash(c.first); });
  if (taken) fail<ValueError>("[Module] name '", name, "' is already registered");
}

void Module::register_parameter(const std::string& name, array value) {
  check_name(name, false);
  param_order_.push_back(name);
  params_.emplace(name, std::move(value));
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  if (!child) fail<ValueError>("[Module] module '", name, "' is null");
  if (child.get() == this) fail<ValueError>("[Module] module '", name, "' cannot be its own child");
  check_name(name, true);
  children_.emplace_back(name, std::move(child));
}

void Module::add_child_list(const std::string& name, const std::vector<std::shared_ptr<Module>>& children) {
  check_name(name, false);
  for (size_t i = 0; i < children.size(); ++i) add_child(name + "." + std::to_string(i), children[i]);
}

const array& Module::parameter(const std::string& name) const {
  auto it = params_.find(name);
  if (it == params_.end()) fail<ValueError>("[Module] no parameter named '", name, "'");
  return it->second;
}

void Module::set_parameter(const std::string& name, array value) {
  auto it = params_.find(name);
  if (it == params_.end()) fail<ValueError>("[Module] no parameter named '", name, "'");
  it->second = std::move(value);
}

void Module::collect(const std::string& prefix, std::vector<Slot>& out) const {
  for (const auto& p : param_order_) out.push_back({prefix + p, const_cast<Module*>(this), p});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::map<std::string, array> Module::parameters() const {
  std::vector<Slot> slots;
  collect("", slots);
  std::map<std::string, array> out;
  for (const auto& s : slots) out.emplace(s.name, s.owner->params_.at(s.local));
  return out;
}

void Module::update(const std::map<std::string, array>& params) {
  std::vector<Slot> slots;
  collect("", slots);
  std::map<std::string, const Slot*> by_name;
  for (const auto& s : slots) by_name.emplace(s.name, &s);
  std::vector<std::string> unknown;
  for (const auto& [name, value] : params) {
    if (!by_name.count(name)) unknown.push_back(name);
  }
  if (!unknown.empty()) fail<ValueError>("[Module.update] no parameters named ", join(unknown));
  for (const auto& [name, value] : params) {
    const Slot* s = by_name.at(name);
    s->owner->params_.at(s->local) = value;
  }
}

void Module::load_weights(const std::map<std::string, array>& weights, bool strict, std::optional<Dtype> dtype) {
  if (dtype && !is_floating(*dtype)) {
    fail<TypeError>("[load_weights] dtype must be a floating type, not ", *dtype);
  }
  std::vector<Slot> slots;
  collect("", slots);
  std::vector<std::string> missing, unexpected, mismatched;
  std::set<std::string> known;
  for (const auto& s : slots) {
    known.insert(s.name);
    auto it = weights.find(s.name);
    if (it == weights.end()) {
      missing.push_back(s.name);
      continue;
    }
    const Shape& want = s.owner->params_.at(s.local).shape();
    if (it->second.shape() != want) {
      std::ostringstream os;
      os << "'" << s.name << "' has shape ";
      detail::put(os, it->second.shape());
      os << " but the parameter has shape ";
      detail::put(os, want);
      mismatched.push_back(os.str());
    }
  }
  for (const auto& [name, value] : weights) {
    if (!known.count(name)) unexpected.push_back(name);
  }
  std::sort(missing.begin(), missing.end());
  std::string problems;
  auto add = [&](const std::string& s) { problems += (problems.empty() ? "" : "; ") + s; };
  if (strict && !missing.empty()) add("missing parameters: " + join(missing));
  if (strict && !unexpected.empty()) add("unexpected parameters: " + join(unexpected));
  for (const auto& m : mismatched) add("shape mismatch: " + m);
  if (!problems.empty()) fail<ValueError>("[load_weights] ", problems);

  for (const auto& s : slots) {
    auto it = weights.find(s.name);
    if (it == weights.end()) continue;
    array w = it->second;
    if (dtype && is_floating(w.dtype()) && w.dtype() != *dtype) w = astype(w, *dtype);
    s.owner->params_.at(s.local) = w;
  }
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : parameters()) n += p.size();
  return n;
}

void Module::to(Dtype dtype) {
  if (!is_floating(dtype)) fail<TypeError>("[Module.to] dtype must be a floating type, not ", dtype);
  std::vector<Slot> slots;
  collect("", slots);
  for (const auto& s : slots) {
    array& p = s.owner->params_.at(s.local);
    if (is_floating(p.dtype()) && p.dtype() != dtype) p = astype(p, dtype);
  }
}

void Module::train(bool mode) {
  training_ = mode;
  for (const auto& [name, child] : children_) child->train(mode);
}

void Module::eval() {
  train(false);
  std::vector<array> all;
  for (const auto& [name, p] : parameters()) all.push_back(p);
  kiln::eval(all);
}

array Module::forward(const array&) const {
  fail<TypeError>("[Module.forward] ", type_name(), " is not callable with one array");
}

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> readable(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && readable ? std::string(readable.get()) : std::string(mangled);
}

}  // namespace kiln::nn
