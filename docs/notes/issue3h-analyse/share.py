import sys
tot=[0]*5; cnt=0
for f in sys.argv[1:]:
    srv=[l.split(' ',2) for l in open('srv-'+f+'.txt').read().split('\n') if l]
    sub={};asg={};look={}
    for a in srv:
        t=float(a[0]); ev=a[1]; info=a[2] if len(a)>2 else ''
        if ev=='sub.done': sub[info]=t
        elif ev=='cyc.assigned':
            for j in info.split(','): asg[j]=t
        elif ev=='poll.looked' and info:
            for j in info.split(','): look.setdefault(j,t)
    jobs=[]
    for l in open('w-'+f+'.txt'):
        if l.startswith('gc'): continue
        a,b,j=l.split(); a=float(a); b=float(b)
        if j in sub and j in asg and j in look: jobs.append((b-a, sub[j]-a, asg[j]-sub[j], look[j]-asg[j], b-look[j]))
    jobs.sort(); n=len(jobs)
    med=[sorted(x[k] for x in jobs)[n//2] for k in range(5)]
    for x in jobs[-n//100:]:
        for k in range(5): tot[k]+=x[k]-med[k]
        cnt+=1
print('slowest 1%% (%d jobs): mean excess over the median, ms: total %.2f = submit %.2f + to assignment %.2f + to look %.2f + to handler %.2f'%(cnt,*[t/cnt for t in tot]))
