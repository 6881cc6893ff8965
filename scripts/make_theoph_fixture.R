# Writes tests/fixtures/theoph.csv: R's datasets::Theoph as a NONMEM-style data set, with the
# estimates of R's nlme (second oracle) for the one-compartment first-order absorption model
# (log-normal BSV on ka, CL, V; additive error; maximum likelihood) in its header comments.
# Run from the repository root:  Rscript scripts/make_theoph_fixture.R
suppressPackageStartupMessages(library(nlme))
d <- as.data.frame(Theoph)
d$Subject <- as.integer(as.character(d$Subject))
d$amt <- d$Dose * d$Wt  # mg (Dose is mg/kg)
pk <- function(lka, lcl, lv, t, amt) {
  ka <- exp(lka); cl <- exp(lcl); v <- exp(lv); ke <- cl / v
  amt * ka / (v * (ka - ke)) * (exp(-ke * t) - exp(-ka * t))
}
fit <- nlme(conc ~ pk(lka, lcl, lv, Time, amt), data = d,
            fixed = lka + lcl + lv ~ 1, random = pdDiag(lka + lcl + lv ~ 1),
            groups = ~Subject, start = c(lka = 0.45, lcl = 1, lv = 3.45), method = "ML")
fe <- fixef(fit)
sds <- as.numeric(VarCorr(fit)[1:3, "StdDev"])
rows <- list()
for (s in sort(unique(d$Subject))) {
  x <- d[d$Subject == s, ]
  x <- x[order(x$Time), ]
  rows[[length(rows) + 1]] <- data.frame(ID = s, TIME = 0, DV = ".", AMT = round(x$amt[1], 4),
                                          EVID = 1, MDV = 1, CMT = 1, WT = x$Wt[1])
  rows[[length(rows) + 1]] <- data.frame(ID = s, TIME = x$Time, DV = format(x$conc),
                                          AMT = 0, EVID = 0, MDV = 0, CMT = 2, WT = x$Wt)
}
out <- do.call(rbind, rows)
out$DV <- trimws(out$DV)
con <- file("tests/fixtures/theoph.csv", "w")
writeLines(c(
  paste0("# Source: R datasets::Theoph (Boeckmann, Sheiner & Beal, NONMEM Users Guide Part V, 1994),"),
  paste0("# written by scripts/make_theoph_fixture.R with ", R.version.string, ", nlme ",
         as.character(packageVersion("nlme")), "."),
  "# AMT = Dose (mg/kg) x Wt (kg), mg, oral, at TIME 0 h; DV = theophylline mg/L; CMT 1 depot, 2 central.",
  "# Oracle: nlme(method = 'ML'), one-compartment first-order absorption, pdDiag BSV on log ka, CL, V, additive error:",
  sprintf("# nlme ka_per_h=%.5f cl_l_per_h=%.5f v_l=%.5f omega_sd_ka=%.5f omega_sd_cl=%.5f omega_sd_v=%.5f add_sd=%.5f loglik=%.4f",
          exp(fe[["lka"]]), exp(fe[["lcl"]]), exp(fe[["lv"]]), sds[1], sds[2], sds[3],
          fit$sigma, as.numeric(logLik(fit)))
), con)
write.table(out, con, sep = ",", row.names = FALSE, quote = FALSE)
close(con)
