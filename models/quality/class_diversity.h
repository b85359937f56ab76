// Per-class quality of a conditional generator: for each class, the samples
// generated with that label against the real images of that class, in the
// features of a feature net (docs/training.md, "Diversity within classes").
//  - precision / recall (k-NN manifolds, metrics.h) within the class: low
//    recall with high precision = the class is drawn well but narrowly;
//  - spread: the mean squared distance of a class's feature vectors to their
//    mean (the trace of their covariance), fake over real;
//  - accuracy: how often the feature net's classifier gives the label.
#pragma once
#include <cstdint>
#include <vector>

#include "sagan/models/quality/metrics.h"

namespace sagan::quality {

// Mean squared Euclidean distance of the rows to their mean, in float64
// (= trace of the biased covariance). Needs at least one row.
double feature_spread(const FeatureMatrix& m);

// Fraction of rows whose largest logit is at column `label`.
double label_accuracy(const FeatureMatrix& logits, int64_t label);

struct ClassDiversity {
  int64_t label = 0;
  int64_t n_real = 0, n_fake = 0;
  double precision = 0, recall = 0;  // within the class
  double spread_real = 0, spread_fake = 0;
  double accuracy_real = 0, accuracy_fake = 0;
};

// One class: features and logits of its real images and of the samples
// generated with its label.
ClassDiversity class_diversity(int64_t label, const FeatureMatrix& real_features, const FeatureMatrix& real_logits,
                               const FeatureMatrix& fake_features, const FeatureMatrix& fake_logits, int64_t k = 3);

}  // namespace sagan::quality
