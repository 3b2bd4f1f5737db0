/** The ddim4j API: {@link org.ddim4j.Ddim} (open or create a model, sample, edit, save), {@link org.ddim4j.Trainer} (train it), and their options and results. */
package org.ddim4j;
