// Package classify trains and runs the ticket classifier: one linear model
// per label field (group, priority, type; tags multi-label), trained in
// seconds on a CPU from a customer's own resolved tickets, in any language,
// with calibrated probabilities.
//
// Pipeline. Normalize strips HTML, quoted replies and signatures, applies
// NFKC and case folding and replaces URLs, e-mail addresses and numbers by
// placeholders, on a bounded prefix of the text. Features are hashed word
// unigrams and bigrams (subject words also in their own namespace, subject
// terms weighted up) and character 2–5-grams within word boundaries, with
// sublinear TF and IDF learned at training; the word and character blocks
// are L2-normalised separately. Hash buckets seen in fewer than MinDF
// training documents are dropped, so the model stores only the columns it
// uses.
//
// Learning. Each label gets a one-vs-rest L2-regularised linear SVM
// (squared hinge, dual coordinate descent) or logistic regression, with
// balanced class weights by default. The cost is chosen from a small grid
// by stratified k-fold cross-validation (macro-F1); the cross-validation
// scores of the chosen cost then fit a softmax temperature (single-label)
// or per-tag Platt sigmoids and F1-optimal thresholds (tags), and give the
// held-out metrics stored in the artifact, including the
// coverage-at-precision curve an operator uses to pick an apply threshold.
// The model is then refit on all examples, warm-started from the mean of
// each example's dual variables in the folds that trained on it.
//
// Speed. The features are hashed and weighted once; the columns of the
// training matrix are ordered by document frequency so the hot weights stay
// in cache. The one-vs-rest problems of a field are solved in groups that
// share each sweep over the rows (weights interleaved per feature, so one
// read of a row serves every class of the group). Groups run in parallel.
// Every problem's trajectory depends only on the seed and its own data —
// not on the grouping or scheduling — so same data, options and seed give
// a byte-identical artifact.
//
// The artifact format is documented in format.go; its SHA-256 (without the
// creation time) is the model ID.
package classify
