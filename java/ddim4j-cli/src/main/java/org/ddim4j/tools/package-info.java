/** Tools the command line is built on, usable from Java too: KID evaluation of a model, the reference's figures, the learning-rate range test. */
package org.ddim4j.tools;
