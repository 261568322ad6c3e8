import sys, bisect
srv=[l.split(' ',2) for l in open(sys.argv[1]).read().split('\n') if l]
srv=[(float(a[0]),a[1],a[2] if len(a)>2 else '') for a in srv]
srv.sort()
ts=[e[0] for e in srv]
sub={};asg={};look={}
for t,ev,info in srv:
    if ev=='sub.done': sub[info]=t
    elif ev=='cyc.assigned':
        for j in info.split(','): asg[j]=t
    elif ev=='poll.looked' and info:
        for j in info.split(','): look[j]=t
jobs=[]
for l in open(sys.argv[2]):
    if l.startswith("gc"): continue
    a,b,j=l.split(); a=float(a); b=float(b)
    if j in sub and j in asg and j in look:
        jobs.append((b-a, a, sub[j]-a, asg[j]-sub[j], look[j]-asg[j], b-look[j], j))
jobs.sort()
n=len(jobs)
import statistics
for k,name in [(2,'submit'),(3,'sub->assigned'),(4,'assigned->looked'),(5,'looked->start')]:
    v=sorted(x[k] for x in jobs); print(name,'p50 %.2f p99 %.2f max %.2f'%(v[n//2],v[int(n*.99)],v[-1]))
print('total p50 %.2f p99 %.2f'%(jobs[n//2][0],jobs[int(n*.99)][0]))
N=int(sys.argv[3]) if len(sys.argv)>3 else 30
for x in jobs[-N:]:
    print('TOTAL %.2f  submit %.2f  ->asg %.2f  ->look %.2f  ->start %.2f %s'%(x[0],x[2],x[3],x[4],x[5],x[6][-6:]))
if len(sys.argv)>4:
  for x in jobs[-int(sys.argv[4]):]:
    a=x[1]; b=a+x[0]
    print('=== job',x[6][-6:],'total %.2f'%x[0])
    i=bisect.bisect_left(ts,a-2); 
    while i<len(srv) and srv[i][0]<=b+1:
        t,ev,info=srv[i]; print('  %+8.2f %s %s'%(t-a,ev,info[:90])); i+=1
