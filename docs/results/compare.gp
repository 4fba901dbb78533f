do for [t=1:2] {
  if (t == 1) {
    if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
      set terminal pngcairo noenhanced size 1500,650 font ",11"
    } else {
      set terminal png noenhanced size 1500,650
    }
    set output "compare.png"
  } else {
    set terminal svg noenhanced size 1500,650 dynamic font ",11"
    set output "compare.svg"
  }
  reset
  # fnet-compare: 60000 training samples, 10 epochs, 3 seeds; data compare.dat
  names = "dense tt tr tucker cp lowrank circ pruned sparse lbfgs cg"
  n = 11
  colors = "#000000 #d62728 #1f77b4 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 #17becf #7f7f7f #bcbd22"
  set multiplot layout 1,2 title "fnet-compare: 60000 training samples, 10 epochs, 3 seeds (mean ± sd over seeds)"
  set grid
  set key outside right top vertical box
  set logscale x
  set format x "%.0s%c"
  set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08
  set xlabel "stored parameters (log scale)"
  set ylabel "test accuracy"
  set title "test accuracy against size (error bars: ±1 sd)"
  ref = 0.890133
  set arrow 1 from graph 0, first ref to graph 1, first ref nohead dt 2 lw 1.5 lc rgb "black"
  plot for [i=0:n-1] "compare.dat" index i using 3:4:5 with yerrorbars lc rgb word(colors, i == 0 ? 1 : 2 + (i - 1) % 10) pt (i == 0 ? 7 : 4 + i % 10) ps (i == 0 ? 2.2 : 1.6) lw 2 title (i == 0 ? word(names, 1)." (reference)" : word(names, i+1)), NaN with lines dt 2 lw 1.5 lc rgb "black" title "reference accuracy"
  unset arrow 1
  unset logscale x
  set format x "%g"
  set format y "%.0s%c"
  set offsets 0, 0, graph 0.1, 0
  set key inside top right nobox
  set title "training throughput"
  set xlabel ""
  set ylabel "training samples/s"
  set yrange [0:*]
  set xrange [-0.6:n-0.4]
  set xtics rotate by 30 right
  set style fill solid 0.7 border -1
  set boxwidth 0.6
  set errorbars 2
  plot "compare.dat" index 11 using 1:($1 == 0 ? $6 : 1/0):7:xtic(2) with boxerrorbars lc rgb "#404040" title "reference", "" index 11 using 1:($1 == 0 ? 1/0 : $6):7:xtic(2) with boxerrorbars lc rgb "#4878c8" title "variants"
  unset multiplot
  set output
}
